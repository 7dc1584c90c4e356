"""Degradations that turn HR images into LR inputs: pure functions on tensors.

All take and return float32 images in [0, 1], `[H, W, C]` or `[N, H, W, C]` (the
output has the input's rank), run inside `tf.data` maps and `tf.function`, and draw
randomness only from a stateless `seed` (`[2]` int32/int64 tensor), so the same seed
gives the same LR image on any machine and in any order. Public, stable names:

- `bicubic_downscale(image, scale)`: MATLAB `imresize(image, 1/scale)` (bicubic,
  antialiased, symmetric borders), output `ceil(H/scale) x ceil(W/scale)`. This is how
  DIV2K's and the standard benchmarks' LR images were made.
- `blur_bicubic(image, scale, sigma=1.6, kernel_size=7)`: Gaussian blur (replicate
  borders, like MATLAB `imfilter(..., 'replicate')`) then `bicubic_downscale` (the
  "BD" degradation of SRMD/RDN).
- `realesrgan(image, scale, seed, config=None)`: Real-ESRGAN's second-order model
  (Wang et al., ICCVW 2021) with its published defaults (`RealESRGANConfig`).
- `degrade(image, name, scale, seed=None, ...)`: dispatch by name (`DEGRADATIONS`).

Differences from the PyTorch reference (BasicSR / Real-ESRGAN) worth knowing: random
resizes use `tf.image.resize` (its bicubic is Keys a = -0.5, PyTorch's a = -0.75); JPEG
uses libjpeg through `tf.image.adjust_jpeg_quality` with the quality rounded to an
integer (Real-ESRGAN uses a differentiable JPEG simulation); filters go through FFTs.
Per-batch choices (resize factor and mode, Gaussian vs Poisson noise, second blur, the
order of the final stage) are drawn once per call, as Real-ESRGAN draws them per batch;
kernels, noise levels and JPEG qualities are drawn per image. Traced in a `tf.function`
(not in `tf.data`), `realesrgan` can make Grappler log "topological sort failed"
(a known false alarm about graphs with loops inside conditionals; results are unaffected).
On a 2-core CPU `realesrgan` costs ~6 ms of CPU per 128x128 patch: USM sharpening, the
first blur and TF's Poisson sampler (~50 ns per value) are the largest parts.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf

from sr_tf.config import ConfigBase
from sr_tf.data import kernels as K
from sr_tf.data.resize import _output_length, apply_separable, imresize, resize_matrix

RESIZE_MODES = ("area", "bilinear", "bicubic")


def _as_batch(image: tf.Tensor, name: str) -> tuple[tf.Tensor, bool]:
    image = tf.convert_to_tensor(image)
    if image.dtype != tf.float32:
        raise TypeError(f"{name} expects float32 images in [0, 1]. Received: dtype={image.dtype.name}")
    if image.shape.rank == 3:
        return image[None], True
    if image.shape.rank == 4:
        return image, False
    raise ValueError(f"{name} expects [H, W, C] or [N, H, W, C]. Received: shape={image.shape}")


def _check_scale(name: str, scale) -> int:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"{name} needs an integer scale >= 1. Received: scale={scale!r}")
    return scale


def _seed(seed) -> tf.Tensor:
    seed = tf.convert_to_tensor(seed)
    if seed.dtype not in (tf.int32, tf.int64) or seed.shape.rank != 1 or seed.shape[0] not in (None, 2):
        raise ValueError(f"seed must be a [2] int32/int64 tensor (a stateless RNG seed). Received: {seed!r}")
    return tf.cast(seed, tf.int64)


def bicubic_downscale(image: tf.Tensor, scale: int) -> tf.Tensor:
    """MATLAB-compatible bicubic downscaling (`imresize(image, 1/scale)`), before rounding.

    Args:
      image: `[H, W, C]` or `[N, H, W, C]` float32 in [0, 1].
      scale: integer downscale factor (2, 3, 4, ...).

    Returns:
      `[ceil(H/scale), ceil(W/scale), C]` (or batched) float32. Not clipped: bicubic
      overshoots [0, 1] by a little near sharp edges, as MATLAB's double output does.
    """
    _check_scale("bicubic_downscale", scale)
    return imresize(image, scale)


def _gaussian_taps(sigma: float, size: int) -> list[float]:
    """MATLAB `fspecial('gaussian', size, sigma)` along one axis (the 2-D kernel is the outer product)."""
    half = (size - 1) / 2.0
    taps = [math.exp(-((i - half) ** 2) / (2.0 * sigma * sigma)) for i in range(size)]
    total = sum(taps)
    return [t / total for t in taps]


def conv_matrix(length, taps: list[float], mode: str = "replicate") -> tf.Tensor:
    """`[length, length]` float64 matrix of a centred 1-D filter with `replicate` or `reflect` borders."""
    if mode not in ("replicate", "reflect"):
        raise ValueError(f"conv_matrix mode must be 'replicate' or 'reflect'. Received: mode={mode!r}")
    length = tf.cast(length, tf.int64)
    half = len(taps) // 2
    rows = tf.range(length)[:, None] + tf.zeros([1, len(taps)], tf.int64)
    cols = rows + tf.range(-half, len(taps) - half, dtype=tf.int64)[None, :]
    if mode == "replicate":
        cols = tf.clip_by_value(cols, 0, length - 1)
    else:
        period = tf.maximum(2 * length - 2, 1)
        m = tf.math.floormod(cols, period)
        cols = tf.where(m < length, m, period - m)
    weights = tf.broadcast_to(tf.constant(taps, tf.float64)[None, :], tf.shape(cols))
    coords = tf.stack([tf.reshape(rows, [-1]), tf.reshape(cols, [-1])], axis=1)
    return tf.scatter_nd(coords, tf.reshape(weights, [-1]), tf.stack([length, length]))


def blur_bicubic(image: tf.Tensor, scale: int, sigma: float = 1.6, kernel_size: int = 7) -> tf.Tensor:
    """Gaussian blur then MATLAB bicubic downscaling ("BD" degradation), before rounding.

    Equivalent to MATLAB `imresize(imfilter(image, fspecial('gaussian', kernel_size, sigma),
    'replicate'), 1/scale)`; both steps are separable, so each axis is one matrix.

    Args:
      image: `[H, W, C]` or `[N, H, W, C]` float32 in [0, 1].
      scale: integer downscale factor.
      sigma: Gaussian standard deviation in HR pixels (> 0).
      kernel_size: odd Gaussian support in HR pixels.

    Returns:
      `[ceil(H/scale), ceil(W/scale), C]` (or batched) float32.
    """
    _check_scale("blur_bicubic", scale)
    if not sigma > 0 or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"blur_bicubic needs sigma > 0 and an odd kernel_size. Received: sigma={sigma!r}, kernel_size={kernel_size!r}")
    batch, single = _as_batch(image, "blur_bicubic")
    taps = _gaussian_taps(float(sigma), int(kernel_size))
    h, w = tf.shape(batch)[1], tf.shape(batch)[2]
    rows = resize_matrix(h, _output_length(h, scale), scale, prefilter=conv_matrix(h, taps))
    cols = resize_matrix(w, _output_length(w, scale), scale, prefilter=conv_matrix(w, taps))
    out = apply_separable(batch, rows, cols)
    return out[0] if single else out


def _blur_planes(planes: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
    """`rows @ planes @ cols^T` on `[N, C, H, W]` (two large matmuls, no transposes)."""
    shape = tf.shape(planes)
    y = tf.linalg.matmul(rows, planes)  # [N, C, H', W]
    out_h, out_w = tf.shape(rows)[0], tf.shape(cols)[0]
    y = tf.linalg.matmul(tf.reshape(y, [-1, shape[3]]), cols, transpose_b=True)  # [N*C*H', W']
    y = tf.reshape(y, [shape[0], shape[1], out_h, out_w])
    return tf.ensure_shape(y, [planes.shape[0], planes.shape[1], None, None])


def _usm_planes(planes: tf.Tensor, weight: float, threshold: float, radius: int) -> tf.Tensor:
    size = radius + 1 if radius % 2 == 0 else radius
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8  # OpenCV's sigma for getGaussianKernel(size, 0)
    taps = _gaussian_taps(sigma, size)
    shape = tf.shape(planes)
    rows = tf.cast(conv_matrix(shape[2], taps, "reflect"), tf.float32)
    cols = tf.cast(conv_matrix(shape[3], taps, "reflect"), tf.float32)
    residual = planes - _blur_planes(planes, rows, cols)
    soft = _blur_planes(tf.cast(tf.abs(residual) * 255.0 > threshold, tf.float32), rows, cols)
    sharp = tf.clip_by_value(planes + weight * residual, 0.0, 1.0)
    return planes + soft * (sharp - planes)


def _to_planes(batch: tf.Tensor) -> tf.Tensor:
    return tf.transpose(batch, [0, 3, 1, 2])


def _from_planes(planes: tf.Tensor) -> tf.Tensor:
    return tf.transpose(planes, [0, 2, 3, 1])


def usm_sharp(image: tf.Tensor, weight: float = 0.5, threshold: float = 10.0, radius: int = 50) -> tf.Tensor:
    """Unsharp masking as Real-ESRGAN applies it to the HR image (BasicSR's `USMSharp`).

    A `radius+1`-wide Gaussian (OpenCV's default sigma for that size, 8.0 for radius 50)
    with reflect borders gives `blur`; `sharp = clip(image + weight * (image - blur))` is
    blended in where `|image - blur| * 255 > threshold` (with a blurred, soft mask).

    Args:
      image: `[H, W, C]` or `[N, H, W, C]` float32 in [0, 1].

    Returns:
      The same shape, float32 in [0, 1].
    """
    batch, single = _as_batch(image, "usm_sharp")
    out = _from_planes(_usm_planes(_to_planes(batch), weight, threshold, radius))
    return out[0] if single else out


@dataclass(frozen=True)
class RealESRGANConfig(ConfigBase):
    """Real-ESRGAN's degradation settings; defaults are `train_realesrgan_x4plus.yml`.

    Ranges are `(low, high)`; noise sigmas are in 8-bit units; probabilities in [0, 1].
    `kernel_prob` follows `sr_tf.data.kernels.KERNEL_TYPES`; `resize_prob` is (up, down, keep).
    """

    sharpen_input: bool = True  # Real-ESRGAN blurs the USM-sharpened HR (`gt_usm`)
    kernel_sizes: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
    # first degradation
    kernel_prob: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    betag_range: tuple[float, float] = (0.5, 4.0)
    betap_range: tuple[float, float] = (1.0, 2.0)
    sinc_prob: float = 0.1
    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_range: tuple[float, float] = (1.0, 30.0)
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[float, float] = (30.0, 95.0)
    # second degradation
    second_blur_prob: float = 0.8
    kernel_prob2: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    blur_sigma2: tuple[float, float] = (0.2, 1.5)
    betag_range2: tuple[float, float] = (0.5, 4.0)
    betap_range2: tuple[float, float] = (1.0, 2.0)
    sinc_prob2: float = 0.1
    resize_prob2: tuple[float, float, float] = (0.3, 0.4, 0.3)
    resize_range2: tuple[float, float] = (0.3, 1.2)
    gaussian_noise_prob2: float = 0.5
    noise_range2: tuple[float, float] = (1.0, 25.0)
    poisson_scale_range2: tuple[float, float] = (0.05, 2.5)
    gray_noise_prob2: float = 0.4
    jpeg_range2: tuple[float, float] = (30.0, 95.0)
    # final stage
    final_sinc_prob: float = 0.8
    resize_modes: tuple[str, ...] = RESIZE_MODES

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):  # accept lists from JSON/YAML, store tuples
                object.__setattr__(self, f.name, tuple(value))
                value = tuple(value)
            if f.name.endswith("_prob") and isinstance(value, (int, float)) and not 0.0 <= value <= 1.0:
                raise ValueError(f"RealESRGANConfig.{f.name} must be in [0, 1]. Received: {f.name}={value!r}")
            if f.name.endswith(("_range", "_range2", "blur_sigma", "blur_sigma2")):
                if len(value) != 2 or not value[0] <= value[1]:
                    raise ValueError(f"RealESRGANConfig.{f.name} must be (low, high) with low <= high. Received: {f.name}={value!r}")
        for name in ("kernel_prob", "kernel_prob2"):
            probs = getattr(self, name)
            if len(probs) != len(K.KERNEL_TYPES) or min(probs) < 0 or sum(probs) <= 0:
                raise ValueError(f"RealESRGANConfig.{name} needs {len(K.KERNEL_TYPES)} non-negative weights for {K.KERNEL_TYPES}. Received: {name}={probs!r}")
        for name in ("resize_prob", "resize_prob2"):
            probs = getattr(self, name)
            if len(probs) != 3 or min(probs) < 0 or sum(probs) <= 0:
                raise ValueError(f"RealESRGANConfig.{name} needs 3 non-negative weights (up, down, keep). Received: {name}={probs!r}")
        if not self.kernel_sizes or any(k % 2 == 0 or k < 1 or k > 21 for k in self.kernel_sizes):
            raise ValueError(f"RealESRGANConfig.kernel_sizes must be odd sizes in [1, 21]. Received: {self.kernel_sizes!r}")
        bad = [m for m in self.resize_modes if m not in RESIZE_MODES]
        if bad or not self.resize_modes:
            raise ValueError(f"RealESRGANConfig.resize_modes must be taken from {RESIZE_MODES}. Received: {self.resize_modes!r}")


def _uniform(seed, shape, low, high):
    return tf.random.stateless_uniform(shape, seed, minval=float(low), maxval=float(high))


def _resize_matrix(length: tf.Tensor, out_length: tf.Tensor, method: str) -> tf.Tensor:
    """`[out, length]` matrix of `tf.image.resize(method, antialias=False)` along one axis.

    The resizes used here are separable and linear, so resizing the identity gives the matrix.
    """
    eye = tf.eye(length, dtype=tf.float32)[:, :, None]
    return tf.image.resize(eye, tf.stack([out_length, length]), method=method, antialias=False)[:, :, 0]


def _resize_planes(planes: tf.Tensor, size: tf.Tensor, mode_index: tf.Tensor, modes: tuple[str, ...]) -> tf.Tensor:
    """Resizes `[N, C, H, W]` to `size` (`[2]`, at least 1x1) with `modes[mode_index]`."""
    size = tf.maximum(tf.cast(size, tf.int32), 1)
    shape = tf.shape(planes)

    def matrices(method):
        return lambda: (_resize_matrix(shape[2], size[0], method), _resize_matrix(shape[3], size[1], method))

    rows, cols = tf.switch_case(mode_index, [matrices(m) for m in modes])
    return _blur_planes(planes, rows, cols)


def _random_resize_factor(seed, prob, low_high) -> tf.Tensor:
    seeds = tf.random.experimental.stateless_split(seed, 2)
    kind = tf.random.stateless_categorical(tf.math.log(tf.constant([list(prob)], tf.float32)), 1, seeds[0], dtype=tf.int32)[0, 0]
    t = _uniform(seeds[1], [], 0.0, 1.0)
    up = 1.0 + t * (low_high[1] - 1.0)
    down = low_high[0] + t * (1.0 - low_high[0])
    return tf.where(kind == 0, up, tf.where(kind == 1, down, 1.0))


def _random_mode(seed, modes) -> tf.Tensor:
    return tf.random.stateless_uniform([], seed, 0, len(modes), dtype=tf.int32)


def _gaussian_noise_planes(planes, seed, sigma_range, gray_prob):
    seeds = tf.random.experimental.stateless_split(seed, 3)
    n = tf.shape(planes)[0]
    sigma = _uniform(seeds[0], [n], *sigma_range)[:, None, None, None] / 255.0
    gray = (_uniform(seeds[1], [n], 0.0, 1.0) < gray_prob)[:, None, None, None]
    noise = tf.random.stateless_normal(tf.shape(planes), seeds[2])
    noise = tf.where(gray, noise[:, :1], noise)  # gray images: one noise plane for all channels
    return tf.clip_by_value(planes + noise * sigma, 0.0, 1.0)


def _distinct_levels(levels: tf.Tensor) -> tf.Tensor:
    """`[N]` number of distinct values in each image of `levels` (int32 in [0, 255])."""
    flat = tf.reshape(levels, [tf.shape(levels)[0], -1])
    counts = tf.math.bincount(flat, minlength=256, maxlength=256, axis=-1)
    return tf.reduce_sum(tf.cast(counts > 0, tf.float32), axis=1)


_LUMA = (0.2989, 0.587, 0.114)  # tf.image.rgb_to_grayscale and torchvision's weights


def _poisson_noise_planes(planes, seed, scale_range, gray_prob):
    seeds = tf.random.experimental.stateless_split(seed, 4)
    n = tf.shape(planes)[0]
    scale = _uniform(seeds[0], [n], *scale_range)[:, None, None, None]
    gray = _uniform(seeds[1], [n], 0.0, 1.0) < gray_prob
    clipped = tf.clip_by_value(planes, 0.0, 1.0)
    luma = tf.reduce_sum(clipped * tf.constant(_LUMA)[None, :, None, None], axis=1, keepdims=True)

    def shot_noise(images, seed):
        """`Poisson(img * vals) / vals - img` on 8-bit-rounded images, `vals` per image."""
        levels = tf.cast(tf.round(images * 255.0), tf.int32)
        distinct = _distinct_levels(levels)
        vals = tf.pow(2.0, tf.math.ceil(tf.math.log(distinct) / math.log(2.0) - 1e-6))[:, None, None, None]
        base = tf.cast(levels, tf.float32) / 255.0
        counts = tf.random.stateless_poisson(tf.shape(base), seed, base * vals, dtype=tf.float32)
        return counts / vals - base

    # TF's Poisson sampler costs ~50 ns per value, so gray images (one luma plane) and colour
    # images (three planes) are sampled separately instead of both for every image.
    gray_index = tf.cast(tf.where(gray)[:, 0], tf.int32)
    color_index = tf.cast(tf.where(~gray)[:, 0], tf.int32)
    color_noise = shot_noise(tf.gather(clipped, color_index), seeds[2])
    gray_noise = shot_noise(tf.gather(luma, gray_index), seeds[3])
    gray_noise = tf.broadcast_to(gray_noise, tf.shape(tf.gather(clipped, gray_index)))
    noise = tf.dynamic_stitch([color_index, gray_index], [color_noise, gray_noise])
    noise = tf.reshape(noise, tf.shape(planes))
    return tf.clip_by_value(planes + noise * scale, 0.0, 1.0)


def _jpeg_planes(planes, quality):
    return _to_planes(jpeg_compress(_from_planes(planes), quality))


def add_gaussian_noise(images: tf.Tensor, seed, sigma_range=(1.0, 30.0), gray_prob: float = 0.4) -> tf.Tensor:
    """Adds Gaussian noise with a per-image sigma (8-bit units) in `sigma_range`, gray with chance `gray_prob`.

    Args:
      images: `[N, H, W, C]` float32 in [0, 1].
      seed: `[2]` stateless seed.

    Returns:
      `[N, H, W, C]` float32 clipped to [0, 1].
    """
    batch, single = _as_batch(images, "add_gaussian_noise")
    out = _from_planes(_gaussian_noise_planes(_to_planes(batch), _seed(seed), sigma_range, gray_prob))
    return out[0] if single else out


def add_poisson_noise(images: tf.Tensor, seed, scale_range=(0.05, 3.0), gray_prob: float = 0.4) -> tf.Tensor:
    """Adds Poisson (shot) noise as BasicSR's `random_add_poisson_noise_pt` does.

    The image is rounded to 8 bits, `vals = 2**ceil(log2(#distinct values))`, and the
    noise `(Poisson(img * vals) / vals - img) * scale` has a per-image `scale` in
    `scale_range`; gray noise (computed on the luma) with chance `gray_prob`.

    Args:
      images: `[N, H, W, 3]` float32 in [0, 1].
      seed: `[2]` stateless seed.

    Returns:
      `[N, H, W, 3]` float32 clipped to [0, 1].
    """
    batch, single = _as_batch(images, "add_poisson_noise")
    out = _from_planes(_poisson_noise_planes(_to_planes(batch), _seed(seed), scale_range, gray_prob))
    return out[0] if single else out


def jpeg_compress(images: tf.Tensor, quality: tf.Tensor) -> tf.Tensor:
    """JPEG-compresses each image at its own quality (rounded to an integer in [0, 100]).

    Args:
      images: `[N, H, W, 3]` float32 in [0, 1] (values outside are clipped first).
      quality: `[N]` float qualities.

    Returns:
      `[N, H, W, 3]` float32 in [0, 1].
    """
    images = tf.clip_by_value(images, 0.0, 1.0)
    q = tf.cast(tf.clip_by_value(tf.round(quality), 0.0, 100.0), tf.int32)
    out = tf.map_fn(
        lambda args: tf.image.adjust_jpeg_quality(args[0], args[1]),
        (images, q),
        fn_output_signature=tf.TensorSpec([None, None, images.shape[-1]], tf.float32),
    )
    return tf.reshape(out, tf.shape(images))


def _noise_planes(x, seed, gaussian_prob, sigma_range, poisson_range, gray_prob):
    seeds = tf.random.experimental.stateless_split(seed, 2)
    use_gaussian = _uniform(seeds[0], [], 0.0, 1.0) < gaussian_prob
    return tf.cond(
        use_gaussian,
        lambda: _gaussian_noise_planes(x, seeds[1], sigma_range, gray_prob),
        lambda: _poisson_noise_planes(x, seeds[1], poisson_range, gray_prob),
    )


def realesrgan(image: tf.Tensor, scale: int, seed, config: RealESRGANConfig | None = None) -> tf.Tensor:
    """Real-ESRGAN's second-order degradation: HR -> LR of `floor(H/scale) x floor(W/scale)`.

    Steps (Real-ESRGAN `feed_data`): [USM sharpening] -> random blur kernel -> random
    resize -> Gaussian or Poisson noise -> JPEG; then again with the second set of
    settings (blur with chance `second_blur_prob`, resize relative to the LR size);
    finally, in random order, [resize to the LR size + sinc filter] and JPEG; then
    rounding to 8-bit levels.

    Args:
      image: `[H, W, 3]` or `[N, H, W, 3]` float32 in [0, 1]; RGB.
      scale: integer downscale factor.
      seed: `[2]` int stateless seed; equal seeds give equal outputs.
      config: degradation settings; `RealESRGANConfig()` (the published ones) by default.

    Returns:
      float32 in [0, 1], multiples of 1/255, with the input's rank.
    """
    _check_scale("realesrgan", scale)
    cfg = config or RealESRGANConfig()
    batch, single = _as_batch(image, "realesrgan")
    if batch.shape[-1] != 3:
        raise ValueError(f"realesrgan expects RGB images (3 channels). Received: shape={batch.shape}")
    s = tf.random.experimental.stateless_split(_seed(seed), 16)
    shape = tf.shape(batch)
    n, h, w = shape[0], shape[1], shape[2]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    sizes = cfg.kernel_sizes
    # Channel-first planes: filters and resizes become large matmuls/FFTs on the last two axes.
    x = _to_planes(batch)
    if cfg.sharpen_input:
        x = _usm_planes(x, 0.5, 10.0, 50)
    # ----- first degradation -----
    k1 = K.random_kernels(s[0], n, cfg.kernel_prob, cfg.blur_sigma, cfg.betag_range, cfg.betap_range, cfg.sinc_prob, sizes)
    x = K.filter_planes(x, k1)
    factor = _random_resize_factor(s[1], cfg.resize_prob, cfg.resize_range)
    x = _resize_planes(x, tf.stack([tf.floor(hf * factor), tf.floor(wf * factor)]), _random_mode(s[2], cfg.resize_modes), cfg.resize_modes)
    x = _noise_planes(x, s[3], cfg.gaussian_noise_prob, cfg.noise_range, cfg.poisson_scale_range, cfg.gray_noise_prob)
    x = _jpeg_planes(x, _uniform(s[4], [n], *cfg.jpeg_range))
    # ----- second degradation -----
    k2 = K.random_kernels(s[5], n, cfg.kernel_prob2, cfg.blur_sigma2, cfg.betag_range2, cfg.betap_range2, cfg.sinc_prob2, sizes)
    x = tf.cond(_uniform(s[6], [], 0.0, 1.0) < cfg.second_blur_prob, lambda: K.filter_planes(x, k2), lambda: x)
    factor2 = _random_resize_factor(s[7], cfg.resize_prob2, cfg.resize_range2)
    size2 = tf.stack([tf.floor(hf / scale * factor2), tf.floor(wf / scale * factor2)])
    x = _resize_planes(x, size2, _random_mode(s[8], cfg.resize_modes), cfg.resize_modes)
    x = _noise_planes(x, s[9], cfg.gaussian_noise_prob2, cfg.noise_range2, cfg.poisson_scale_range2, cfg.gray_noise_prob2)
    # ----- final stage: [resize back + sinc] and JPEG, in random order -----
    sinc = K.random_final_sinc(s[10], n, cfg.final_sinc_prob, sizes)
    quality = _uniform(s[11], [n], *cfg.jpeg_range2)
    mode = _random_mode(s[12], cfg.resize_modes)
    lr_size = tf.stack([h // scale, w // scale])

    def resize_then_jpeg():
        return _jpeg_planes(K.filter_planes(_resize_planes(x, lr_size, mode, cfg.resize_modes), sinc), quality)

    def jpeg_then_resize():
        return K.filter_planes(_resize_planes(_jpeg_planes(x, quality), lr_size, mode, cfg.resize_modes), sinc)

    x = tf.cond(_uniform(s[13], [], 0.0, 1.0) < 0.5, resize_then_jpeg, jpeg_then_resize)
    x = _from_planes(tf.clip_by_value(tf.round(x * 255.0), 0.0, 255.0) / 255.0)
    static_h = None if batch.shape[1] is None else batch.shape[1] // scale
    static_w = None if batch.shape[2] is None else batch.shape[2] // scale
    x = tf.ensure_shape(x, [batch.shape[0], static_h, static_w, 3])
    return x[0] if single else x


# name -> function(image, scale, seed, **options); `seed` is ignored by deterministic ones.
DEGRADATIONS: dict[str, Callable[..., tf.Tensor]] = {
    "bicubic": lambda image, scale, seed=None, **kw: bicubic_downscale(image, scale),
    "blur-bicubic": lambda image, scale, seed=None, **kw: blur_bicubic(image, scale, **kw),
    "realesrgan": lambda image, scale, seed=None, **kw: realesrgan(image, scale, seed, **kw),
}


def degrade(image: tf.Tensor, name: str, scale: int, seed=None, **options) -> tf.Tensor:
    """Applies the degradation called `name` (a key of `DEGRADATIONS`).

    Args:
      image: `[H, W, C]` or `[N, H, W, C]` float32 in [0, 1].
      name: "bicubic", "blur-bicubic" or "realesrgan".
      scale: integer downscale factor.
      seed: `[2]` stateless seed (required by "realesrgan").
      **options: `sigma`/`kernel_size` for "blur-bicubic", `config` for "realesrgan".

    Returns:
      The LR image, float32.
    """
    if name not in DEGRADATIONS:
        raise ValueError(f"Unknown degradation. Expected one of {sorted(DEGRADATIONS)}. Received: name={name!r}")
    if name == "realesrgan" and seed is None:
        raise ValueError("The 'realesrgan' degradation is random: pass a [2] int seed. Received: seed=None")
    return DEGRADATIONS[name](image, scale, seed, **options)
