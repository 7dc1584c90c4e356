"""The ncnn CPU reference for the zoo's models: the graphs run by the `ncnn` package, with the pre- and
post-processing that realcugan-ncnn-vulkan and waifu2x-ncnn-vulkan (`process_cpu`, one tile) do around them.

Everything returns the float image the C++ programs quantise last (`v * 255 + 0.5`, truncated), in [0, 1]
units, so outputs can be compared before rounding.
"""

from __future__ import annotations

import functools

import numpy as np

REFLECT, REPLICATE = 2, 1  # ncnn::BORDER_REFLECT, ncnn::BORDER_REPLICATE


THREADS = 1  # ncnn's CPU threads; benchmarks/upscale_vs_ncnn.py sets it to the machine's cores


@functools.lru_cache(maxsize=8)
def _loaded(param: str, weights: str, threads: int):
    import ncnn

    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = threads
    net.load_param(param)
    net.load_model(weights)
    return net


def _net(param: str, weights: str):
    """The loaded graph, kept for the next call (a benchmark times the run, not the load)."""
    return _loaded(param, weights, THREADS)


def extract(param: str, weights: str, chw: np.ndarray, in_name: str, out_name: str) -> np.ndarray:
    """Runs one graph on a `[C, H, W]` float32 array; returns `[C', H', W']`."""
    import ncnn

    net = _net(param, weights)
    chw = np.ascontiguousarray(chw, dtype=np.float32)
    mat = ncnn.Mat(chw)  # keep `chw` alive until extraction is done: ncnn.Mat does not copy
    ex = net.create_extractor()
    ex.input(in_name, mat)
    ret, out = ex.extract(out_name)
    assert ret == 0, f"ncnn extraction failed with {ret}"
    return np.array(out).copy()


def _prepadded(image_hwc: np.ndarray, prepadding: int, multiple: int, border: int) -> np.ndarray:
    """The C++ programs' tile preparation for a single tile: `[C, H', W']`, padded by ncnn itself."""
    import ncnn

    h, w = image_hwc.shape[:2]
    chw = np.ascontiguousarray(image_hwc.transpose(2, 0, 1), dtype=np.float32)
    mat = ncnn.Mat(chw)
    bottom = prepadding + (h + multiple - 1) // multiple * multiple - h
    right = prepadding + (w + multiple - 1) // multiple * multiple - w
    padded = ncnn.copy_make_border(mat, prepadding, bottom, prepadding, right, border, 0.0)
    return np.array(padded).copy()


def realcugan_cpu(param: str, weights: str, image_hwc: np.ndarray, scale: int) -> np.ndarray:
    """realcugan-ncnn-vulkan's `RealCUGAN::process_cpu` on one tile: `[H, W, 3]` in [0, 1] -> `[sH, sW, 3]`."""
    prepadding = {2: 18, 3: 14, 4: 19}[scale]
    multiple = 4 if scale == 3 else 2
    h, w = image_hwc.shape[:2]
    padded = _prepadded(image_hwc, prepadding, multiple, REFLECT)
    out = extract(param, weights, padded, "in0", "out0")[:, : h * scale, : w * scale]
    if scale == 4:  # the x4 graph leaves the nearest-upsampled input for the program to add
        nearest = padded[:, prepadding : prepadding + h, prepadding : prepadding + w]
        out = out + np.repeat(np.repeat(nearest, 4, axis=1), 4, axis=2)
    return out.transpose(1, 2, 0)


def waifu2x_cpu(param: str, weights: str, image_hwc: np.ndarray, prepadding: int) -> np.ndarray:
    """waifu2x-ncnn-vulkan's `Waifu2x::process_cpu` (x2) on one tile: `[H, W, 3]` in [0, 1] -> `[2H, 2W, 3]`."""
    h, w = image_hwc.shape[:2]
    padded = _prepadded(image_hwc, prepadding, 2, REPLICATE)
    return extract(param, weights, padded, "Input1", "Eltwise4")[:, : 2 * h, : 2 * w].transpose(1, 2, 0)


def plain(param: str, weights: str, image_hwc: np.ndarray) -> np.ndarray:
    """Graphs the programs run as they are (SPAN, RealSR's RRDBNet): input "data", output "output"."""
    return extract(param, weights, image_hwc.transpose(2, 0, 1), "data", "output").transpose(1, 2, 0)


def run_program(name: str, image_hwc: np.ndarray) -> np.ndarray:
    """What catalogue model `name`'s C++ program computes on one tile (before its final rounding to 8 bits):
    `[H, W, 3]` float32 in [0, 1] -> `[sH, sW, 3]`. Raises ValueError for an entry with no ncnn files."""
    from sr_tf.pretrained.entries import CATALOGUE, REALCUGAN, SRMD_WHEEL, WAIFU2X
    from sr_tf.pretrained.locate import ncnn_files

    entry = CATALOGUE[name]
    param, weights = (str(p) for p in ncnn_files(name))
    if entry.source is REALCUGAN:
        return realcugan_cpu(param, weights, image_hwc, entry.scale)
    if entry.source is WAIFU2X:
        return waifu2x_cpu(param, weights, image_hwc, 18 if entry.architecture == "CUNet" else 7)
    if entry.source is SRMD_WHEEL:  # our SRMD's default noise level is the program's default `-n 3`
        return srmd_cpu(param, weights, image_hwc, entry.scale, -1 if "-nf-" in name else 3)
    return plain(param, weights, image_hwc)


# srmd-ncnn-vulkan's srmd_preproc.comp `degradation_vector`: the bicubic kernel's PCA projection, written out
# here (not imported from sr_tf) so that the reference does not share the model's constants.
SRMD_DEGRADATION = (
    -1.12360956e-08, -1.36899159e-08, 1.85637958e-02, 2.86066886e-08, 3.35292965e-02,
    8.37272935e-08, -2.54424009e-07, -3.16234976e-02, -1.35169253e-02, -1.10466090e-08,
    3.84753793e-02, 3.79465739e-08, -2.44916752e-01, -8.02213490e-01, -5.40549755e-01,
)


def srmd_cpu(param: str, weights: str, image_hwc: np.ndarray, scale: int, noise: int) -> np.ndarray:
    """srmd-ncnn-vulkan's `SRMD::process` on one tile, on the CPU: `[H, W, 3]` in [0, 1] -> `[sH, sW, 3]`.

    Its preprocessing shader edge-clamps the image by `prepadding` (12) and appends 15 channels of
    `degradation_vector` and, unless `noise` is -1 (the srmdnf_x* files), one of `noise / 255`; the
    postprocessing shader crops `prepadding * scale` pixels.
    """
    import ncnn

    prepadding = 12
    h, w = image_hwc.shape[:2]
    chw = np.ascontiguousarray(image_hwc.transpose(2, 0, 1), dtype=np.float32)
    mat = ncnn.Mat(chw)  # no copy: `chw` must outlive it
    padded = np.array(ncnn.copy_make_border(mat, prepadding, prepadding, prepadding, prepadding, REPLICATE, 0.0)).copy()
    values = SRMD_DEGRADATION + (() if noise == -1 else (np.float32(noise) / np.float32(255.0),))
    maps = np.broadcast_to(np.array(values, np.float32)[:, None, None], (len(values), *padded.shape[1:]))
    out = extract(param, weights, np.concatenate([padded, maps]), "input", "output")
    crop = prepadding * scale
    return out[:, crop : crop + h * scale, crop : crop + w * scale].transpose(1, 2, 0)
