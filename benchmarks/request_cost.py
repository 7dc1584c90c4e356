"""What one request costs the server: seconds and memory of a catalogue model's serving graph
(`sr_tf.export.SRServingModule`, tiles as exported) on square inputs of several sizes. The figures
behind `sr-tf serve --max-pixels`' default (serving/README.md).

    flock /tmp/sr-tf-bench.lock python3 benchmarks/request_cost.py --model realesr-animevideov3-x4 --sizes 256 512

Each size runs in its own process (peak RSS is per process), under a 8 GB address-space cap.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

from machine import describe


def one(model: str, size: int) -> None:
    import tensorflow as tf

    from sr_tf.export import ExportConfig, SRServingModule, load_generator
    from sr_tf.models import model_scale

    m = load_generator(model)
    fn = SRServingModule(m, model_scale(m), ExportConfig(warmup=False)).pixels.get_concrete_function()
    fn(images=tf.zeros([1, 16, 16, 3]))
    warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    x = tf.random.uniform([1, size, size, 3], 0, 255)
    start, cpu = time.perf_counter(), time.process_time()
    fn(images=x)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{model} {size}x{size} ({size * size} px): {wall:.1f} s wall, {cpu:.1f} s CPU, "
          f"+{peak - warm:.0f} MiB over the warm model (peak RSS {peak:.0f} MiB)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="realesr-animevideov3-x4")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 362, 512])
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
        return one(args.model, args.one)
    print(describe())
    for size in args.sizes:
        subprocess.run([sys.executable, __file__, "--model", args.model, "--one", str(size)], check=True)


if __name__ == "__main__":
    main()
