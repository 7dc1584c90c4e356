"""Our Keras realesrgan-x4plus against ncnn (CPU) on the same input, in one run.

    python benchmarks/upscale_vs_ncnn.py [--model realesrgan-x4plus] [--size 128] [--repeats 5]

Both run the same published weights on the same crop of a real photo (or a
random image when ../shared is absent), with the same number of threads;
runs alternate between the two so machine noise hits both alike. Prints the
median seconds per image for each and the ratio ncnn/ours (> 1: ours faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

PHOTO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "photos" / "LadyBird.jpg"


def load_input(size: int) -> np.ndarray:
    if PHOTO.is_file():
        from PIL import Image

        with Image.open(PHOTO) as im:
            rgb = np.asarray(im.convert("RGB"))
        y, x = rgb.shape[0] // 2 - size // 2, rgb.shape[1] // 2 - size // 2
        return rgb[y : y + size, x : x + size].astype(np.float32) / 255.0
    return np.random.default_rng(0).random((size, size, 3), dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="realesrgan-x4plus")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()

    import ncnn
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    from sr_tf.inference import Upscaler
    from sr_tf.pretrained import load_pretrained, ncnn_files

    image = load_input(args.size)
    upscaler = Upscaler(load_pretrained(args.model))

    param, weights = ncnn_files(args.model)
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = args.threads
    net.load_param(str(param))
    net.load_model(str(weights))
    chw = np.ascontiguousarray(image.transpose(2, 0, 1))

    def run_ncnn() -> np.ndarray:
        ex = net.create_extractor()
        ex.input("data", ncnn.Mat(chw))
        _, out = ex.extract("output")
        return np.array(out).transpose(1, 2, 0)

    def run_ours() -> np.ndarray:
        return upscaler(image)

    ref, ours = run_ncnn(), run_ours()  # warm-up (and tracing)
    mse = float(np.mean((ref - ours) ** 2))
    wall = {"ours": [], "ncnn": []}
    cpu = {"ours": [], "ncnn": []}
    for _ in range(args.repeats):
        for name, fn in (("ours", run_ours), ("ncnn", run_ncnn)):
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    w = {k: statistics.median(v) for k, v in wall.items()}
    c = {k: statistics.median(v) for k, v in cpu.items()}
    from machine import describe

    print(describe())
    print(f"model={args.model} input={args.size}x{args.size} threads={args.threads} repeats={args.repeats} "
          f"load={os.getloadavg()[0]:.1f} OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    print(f"outputs agree: PSNR {10 * np.log10(1 / mse) if mse else float('inf'):.1f} dB")
    print(f"ours (TF {tf.__version__}, Keras): {w['ours']:.3f} s/image wall, {c['ours']:.3f} s CPU")
    print(f"ncnn {getattr(ncnn, '__version__', '?')} (CPU): {w['ncnn']:.3f} s/image wall, {c['ncnn']:.3f} s CPU")
    print(f"ratio ncnn/ours, wall: {w['ncnn'] / w['ours']:.2f}x; CPU time: {c['ncnn'] / c['ours']:.2f}x "
          "(> 1 means ours is faster; CPU time is the steadier figure on a loaded machine "
          "when ncnn's OpenMP threads do not spin: set OMP_WAIT_POLICY=PASSIVE)")


if __name__ == "__main__":
    main()
