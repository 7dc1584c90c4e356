"""Our upscaling paths against ncnn (the C++ programs' CPU runtime) and OpenVINO on the same input, in one run.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/upscale_vs_ncnn.py        # one model per catalogue architecture
    python benchmarks/upscale_vs_ncnn.py --models realesr-animevideov3-x4:256 --repeats 5

For each model (NAME:SIZE, a SIZE x SIZE crop of a real photo, or a random image when ../shared is
absent; the default list has one catalogue model of each architecture) it times ncnn running the
graph as the model's C++ program does (`tests/pretrained/ncnn_programs.py`, the zoo tests' oracle;
none for PyTorch checkpoints such as DAT-light) and each of our paths: `Upscaler` (what `sr-tf upscale` runs) with every
backend (TensorFlow, OpenVINO when installed) and precision, and the exported SavedModel's
`serving_default` signature (what TF Serving runs) in every precision. float16 is measured only
where the hardware computes it (a GPU, AVX512-FP16 or AMX-FP16; `--precisions` forces it).
Paths run in rounds (one call of each per round), so machine noise hits all of them alike.
Printed: median wall and CPU seconds per image, the ratios ncnn/ours and OpenVINO/ours at the same
precision (> 1: ours faster; the issue's goal is >= 0.8 against OpenVINO), and the PSNR of each path's 8-bit output against ncnn's and against our float32 output.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

PHOTO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "photos" / "LadyBird.jpg"
# One per catalogue architecture (sizes keep each float32 call near a second or less on 2 cores).
DEFAULT_MODELS = (
    "realesrgan-x4plus:128",  # RRDBNet
    "realesr-animevideov3-x4:256",  # SRVGGNetCompact
    "spanx4-ch48:256",  # SPAN
    "realcugan-x2-conservative:192",  # UpCunet
    "waifu2x-cunet-x2:192",  # CUNet
    "waifu2x-upconv7-anime-x2:256",  # UpConv7
    "srmd-x4:256",  # SRMD
    "dat-light-x4:64",  # DAT (a PyTorch checkpoint: no ncnn)
)


def load_input(size: int) -> np.ndarray:
    if PHOTO.is_file():
        from PIL import Image

        with Image.open(PHOTO) as im:
            rgb = np.asarray(im.convert("RGB"))
        y, x = rgb.shape[0] // 2 - size // 2, rgb.shape[1] // 2 - size // 2
        return rgb[y : y + size, x : x + size].astype(np.float32) / 255.0
    return np.random.default_rng(0).random((size, size, 3), dtype=np.float32)


def has_float16_compute() -> bool:
    import tensorflow as tf

    from sr_tf.backends import cpu_flags

    return bool(tf.config.list_physical_devices("GPU")) or bool(cpu_flags() & {"avx512_fp16", "amx_fp16"})


def psnr8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) between two [0, 1] images after rounding both to 8 bits, as saved files hold them."""
    a8, b8 = np.round(np.clip(a, 0, 1) * 255), np.round(np.clip(b, 0, 1) * 255)
    mse = float(np.mean((a8 - b8) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def ncnn_runner(name: str, threads: int):
    """(fn, label) running `name`'s ncnn graph as its C++ program does, or (None, reason)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    try:
        import ncnn

        from sr_tf.pretrained.entries import CATALOGUE
        from tests.pretrained import ncnn_programs
    except ImportError as err:
        return None, f"no ncnn ({err})"
    if CATALOGUE[name].format != "ncnn":
        return None, f"no ncnn files ({CATALOGUE[name].format} checkpoint)"
    ncnn_programs.THREADS = threads
    return (lambda image: ncnn_programs.run_program(name, image),
            f"ncnn {getattr(ncnn, '__version__', '?')} (CPU, fp32 arithmetic)")


def our_runners(name: str, backends: list[str], precisions: list[str], savedmodel: bool, workdir: Path):
    """(label, fn) for each of our paths; fn: [H, W, 3] float32 [0, 1] -> [sH, sW, 3]."""
    import tensorflow as tf

    from sr_tf.export import ExportConfig, export_savedmodel
    from sr_tf.inference import Upscaler
    from sr_tf.runtime.catalogue import load_pretrained

    model = load_pretrained(name)
    runners, skipped = [], []
    for backend in backends:
        for precision in precisions:
            try:
                upscaler = Upscaler(model, backend, precision)
            except (ImportError, ValueError) as err:
                skipped.append(f"Upscaler {backend} {precision}: {err}")
                continue
            runners.append((f"Upscaler {backend} {precision}", upscaler))
    if savedmodel:
        for precision in precisions:
            path = export_savedmodel(model, workdir / f"{name}-{precision}" / "1",
                                     ExportConfig(warmup=False, precision=precision))
            fn = tf.saved_model.load(str(path)).signatures["serving_default"]
            # A model with a noise input (SRMD): TF Serving fills in the signature's default, Python does not.
            extra = ({"noise_level": tf.constant([float(model.noise_level)])}
                     if "noise_level" in fn.structured_input_signature[1] else {})

            def run(image, fn=fn, extra=extra):  # the signature takes and returns 0-255
                return fn(images=tf.constant(image[None] * 255.0), **extra)["upscaled"].numpy()[0] / 255.0

            runners.append((f"SavedModel serving_default {precision}", run))
    return runners, skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), metavar="NAME:SIZE")
    parser.add_argument("--backends", nargs="+", default=["tf", "openvino"])
    parser.add_argument("--precisions", nargs="+", default=None,
                        help="default: float32 and bfloat16, plus float16 where the hardware computes it")
    parser.add_argument("--no-savedmodel", action="store_true", help="skip the exported SavedModel")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    from machine import describe

    precisions = args.precisions or ["float32", "bfloat16"] + (["float16"] if has_float16_compute() else [])
    print(describe())
    print(f"threads={args.threads} repeats={args.repeats} TF {tf.__version__} "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')} "
          f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', 'unset')} (restricts our TF path only)")
    if args.precisions is None and "float16" not in precisions:
        print("float16 not measured: no float16 arithmetic on this machine (pass --precisions to force)")
    workdir = Path(tempfile.mkdtemp(prefix="sr-tf-bench-"))
    for spec in args.models:
        name, _, size = spec.partition(":")
        size = int(size or 128)
        image = load_input(size)
        ncnn_run, ncnn_label = ncnn_runner(name, args.threads)
        ours, skipped = our_runners(name, args.backends, precisions, not args.no_savedmodel, workdir)
        runs = ([("ncnn", ncnn_run)] if ncnn_run else []) + ours
        outputs = {label: fn(image) for label, fn in runs}  # warm-up (tracing, compilation)
        wall = {label: [] for label, _ in runs}
        cpu = {label: [] for label, _ in runs}
        for _ in range(args.repeats):
            for label, fn in runs:
                start, start_cpu = time.perf_counter(), time.process_time()
                fn(image)
                wall[label].append(time.perf_counter() - start)
                cpu[label].append(time.process_time() - start_cpu)
        w = {k: statistics.median(v) for k, v in wall.items()}
        c = {k: statistics.median(v) for k, v in cpu.items()}
        print(f"\nmodel={name} input={size}x{size} load={os.getloadavg()[0]:.1f}; ncnn = {ncnn_label}")
        print(f"{'path':40s} {'wall s':>8s} {'CPU s':>8s} {'vs ncnn':>8s} {'vs OV':>6s} "
              f"{'PSNR vs ncnn':>13s} {'vs our f32':>11s}")
        reference = outputs.get("Upscaler tf float32", outputs.get("ncnn"))
        for label, _ in runs:
            precision = label.rsplit(" ", 1)[-1]
            openvino = f"Upscaler openvino {precision}"
            vs_ncnn = f"{w['ncnn'] / w[label]:7.2f}x" if "ncnn" in w else f"{'-':>8s}"
            vs_ov = f"{w[openvino] / w[label]:5.2f}x" if openvino in w else f"{'-':>6s}"
            vs_ref = f"{psnr8(outputs[label], outputs['ncnn']):10.1f} dB" if "ncnn" in outputs else f"{'-':>13s}"
            vs_f32 = (f"{psnr8(outputs[label], reference):8.1f} dB" if reference is not None  # no f32 run
                      else f"{'-':>11s}")
            print(f"{label:40s} {w[label]:8.3f} {c[label]:8.3f} {vs_ncnn} {vs_ov} {vs_ref} {vs_f32}")
        for line in skipped:
            print(f"  skipped {line}")
    print("\n> 1x: ours faster (vs OV: OpenVINO at the same precision). PSNR on 8-bit outputs; inf = identical bytes. CPU time is the steadier "
          "figure on a loaded machine when ncnn's OpenMP threads do not spin (OMP_WAIT_POLICY=PASSIVE).")


if __name__ == "__main__":
    main()
