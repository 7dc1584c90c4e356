"""Images/s of `sr-tf batch-predict` (Apache Beam, DirectRunner, local files) against a plain Python
loop over the same SavedModel and the same images, in one run; prints the ratio (target >= 0.9x).

Both sides do the same work end to end: load the SavedModel, read each PNG, run the model's
`serving_default` signature on batches of `--batch-size` images, encode PNGs and write them
atomically. The Beam job adds its engine: pipeline construction, Reshuffle, the per-input
existence check and the results/errors files. Wall and CPU time (this process, all threads) are
printed for each, with the machine's load average (other jobs on the machine skew the figures).

    python benchmarks/batch.py                       # jobs of 64 and 256 images of 96x96, SRVGGNetCompact 64x16 x4
    python benchmarks/batch.py --images 1000 --size 64 --repeats 1

How it scales out: on a distributed runner (e.g. `--runner DataflowRunner --num_workers 8
--extra_package dist/sr_tf-0.1.0-py3-none-any.whl`) the Reshuffle after reading the inputs spreads instances over all workers;
each worker process loads the model once (`DoFn.setup`) and batches what it receives, so throughput
grows about linearly with worker cores (or GPUs) until the storage bucket's request rate or the
single results-writing step (one shard per `--num-shards`; tiny compared with the model work)
limits it. Per-image GCS reads/writes add latency but not CPU, and run in parallel across
worker threads.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _make_inputs(folder: Path, count: int, size: int) -> list[Path]:
    from sr_tf.imageio import write_image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        # smooth random images (noise would make PNG encoding the bottleneck, unlike photos)
        small = rng.integers(0, 256, (size // 8 + 1, size // 8 + 1, 3)).astype(np.float32)
        image = np.kron(small, np.ones((8, 8, 1), np.float32))[:size, :size].astype(np.uint8)
        path = folder / f"img{i:04d}.png"
        write_image(path, image)
        paths.append(path)
    return paths


def _export(folder: Path, feat: int, conv: int, scale: int) -> Path:
    import keras

    from sr_tf.export import ExportConfig, export_savedmodel
    from sr_tf.models import SRVGGNetCompact

    keras.utils.set_random_seed(0)
    model = SRVGGNetCompact(num_feat=feat, num_conv=conv, upscale=scale)
    model(np.zeros((1, 8, 8, 3), np.float32))
    return export_savedmodel(model, folder / "model" / "1", ExportConfig(tile_size=256, warmup=False))


def plain_loop(model_dir: Path, inputs: list[Path], out: Path, batch_size: int) -> int:
    """The peer: load the SavedModel, then read / predict in batches / encode / write, in one Python loop."""
    import tensorflow as tf

    from sr_tf.imageio import read_image, write_image

    fn = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    done = 0
    for start in range(0, len(inputs), batch_size):
        chunk = inputs[start : start + batch_size]
        pixels = np.stack([read_image(p).astype(np.float32) for p in chunk])
        result = fn(images=tf.constant(pixels))["upscaled"].numpy().astype(np.uint8)
        for path, image in zip(chunk, result, strict=True):
            write_image(out / path.name, image)
            done += 1
    return done


def beam_job(model_dir: Path, inputs_dir: Path, out: Path, batch_size: int) -> int:
    from sr_tf.batch import BatchConfig, run_batch

    summary = run_batch(BatchConfig(model=str(model_dir), input=str(inputs_dir), output=str(out),
                                    batch_size=batch_size), ["--runner=DirectRunner"])
    if summary.failed:
        raise RuntimeError(f"the Beam job failed on {summary.failed} inputs")
    return summary.succeeded


def _timed(fn, *args) -> tuple[float, float, int]:
    cpu0, wall0 = time.process_time(), time.perf_counter()
    n = fn(*args)
    return time.perf_counter() - wall0, time.process_time() - cpu0, n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", default="64,256",
                        help="comma list of job sizes; two or more also give the marginal rate and fixed costs")
    parser.add_argument("--size", type=int, default=96, help="input edge in pixels")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--feat", type=int, default=64, help="SRVGGNetCompact channels")
    parser.add_argument("--conv", type=int, default=16, help="SRVGGNetCompact body convolutions")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each; the best is kept")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow  # noqa: F401  (both sides run in this process: import costs are paid before timing)
    from machine import describe

    import sr_tf.batch.pipeline  # noqa: F401  (imports Apache Beam)

    sizes = sorted({int(n) for n in args.images.split(",")})
    work = Path(tempfile.mkdtemp(prefix="sr-tf-bench-batch-"))
    try:
        all_inputs = _make_inputs(work / "all", sizes[-1], args.size)
        model_dir = _export(work, args.feat, args.conv, args.scale)
        print(f"{args.size}x{args.size} images, SRVGGNetCompact({args.feat} ch, {args.conv} conv, x{args.scale}) "
              f"SavedModel, batch {args.batch_size}; job sizes {sizes}")
        print(f"before: {describe()}")
        best: dict[tuple[str, int], tuple[float, float]] = {}
        for n in sizes:
            folder = work / f"in-{n}"
            folder.mkdir()
            inputs = [shutil.copy(p, folder / p.name) for p in all_inputs[:n]]
            inputs = [Path(p) for p in inputs]
            for r in range(args.repeats):
                for name in ("loop", "beam"):
                    out = work / f"out-{name}-{n}-{r}"
                    out.mkdir()
                    if name == "loop":
                        wall, cpu, done = _timed(plain_loop, model_dir, inputs, out, args.batch_size)
                    else:
                        wall, cpu, done = _timed(beam_job, model_dir, folder, out, args.batch_size)
                    assert done == n, (name, done, n)
                    print(f"  {n:4d} images, run {r + 1} {name:4s}: {wall:6.2f} s wall, {cpu:6.2f} s CPU, "
                          f"{n / wall:6.2f} images/s")
                    if (name, n) not in best or wall < best[name, n][0]:
                        best[name, n] = (wall, cpu)
        print(f"after:  {describe()}")
        print(f"{'method':28s} {'images':>6s} {'images/s':>9s} {'wall s':>8s} {'CPU s':>8s} {'CPU ms/image':>13s}")
        for n in sizes:
            rates = {}
            for name, label in (("loop", "plain loop (peer)"), ("beam", "Beam DirectRunner job")):
                wall, cpu = best[name, n]
                rates[name] = n / wall
                print(f"{label:28s} {n:6d} {rates[name]:9.2f} {wall:8.2f} {cpu:8.2f} {1000 * cpu / n:13.1f}")
            print(f"Beam / loop throughput, {n} images: {rates['beam'] / rates['loop']:.3f}x (target >= 0.9x)")
        if len(sizes) > 1:  # what each further image costs, without the fixed start-up of either side
            a, b = sizes[0], sizes[-1]
            marginal = {name: (b - a) / (best[name, b][0] - best[name, a][0]) for name in ("loop", "beam")}
            fixed = {name: best[name, a][0] - a / marginal[name] for name in ("loop", "beam")}
            print(f"marginal images/s ({a} -> {b} images): loop {marginal['loop']:.2f}, beam {marginal['beam']:.2f}: "
                  f"{marginal['beam'] / marginal['loop']:.3f}x; fixed start-up: loop {fixed['loop']:.2f} s, "
                  f"beam {fixed['beam']:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
