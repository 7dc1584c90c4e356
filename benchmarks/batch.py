"""Images/s of `sr-tf batch-predict` (Apache Beam, DirectRunner, local files) against a plain Python
loop over the same SavedModel and the same images, in one run; prints the ratio (target >= 0.9x).

Both sides do the same work end to end: load the SavedModel, read each PNG, run the model's
`serving_default` signature on batches of `--batch-size` images, encode PNGs and write them
atomically. The Beam job adds its engine: pipeline construction, Reshuffle, the per-input
existence check and the results/errors files. Wall and CPU time (this process, all threads) are
printed for each, with the machine's load average (other jobs on the machine skew the figures).

    python benchmarks/batch.py                       # 64 images of 96x96, SRVGGNetCompact 64x16 x4
    python benchmarks/batch.py --images 128 --size 64 --repeats 3

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
import subprocess
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


def _load() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=96, help="input edge in pixels")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--feat", type=int, default=64, help="SRVGGNetCompact channels")
    parser.add_argument("--conv", type=int, default=16, help="SRVGGNetCompact body convolutions")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2, help="alternating runs of each; the best is kept")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow  # noqa: F401  (both sides run in this process: import costs are paid before timing)

    import sr_tf.batch.pipeline  # noqa: F401  (imports Apache Beam)

    work = Path(tempfile.mkdtemp(prefix="sr-tf-bench-batch-"))
    try:
        inputs = _make_inputs(work / "in", args.images, args.size)
        model_dir = _export(work, args.feat, args.conv, args.scale)
        print(f"{args.images} images {args.size}x{args.size}, SRVGGNetCompact({args.feat} ch, {args.conv} conv, "
              f"x{args.scale}) SavedModel, batch {args.batch_size}, {os.cpu_count()} CPUs")
        print(f"load before: {_load()}")
        best = {"loop": None, "beam": None}
        for r in range(args.repeats):
            for name in ("loop", "beam"):
                out = work / f"out-{name}-{r}"
                out.mkdir()
                if name == "loop":
                    wall, cpu, n = _timed(plain_loop, model_dir, inputs, out, args.batch_size)
                else:
                    wall, cpu, n = _timed(beam_job, model_dir, work / "in", out, args.batch_size)
                assert n == args.images, (name, n)
                print(f"  run {r + 1} {name:4s}: {wall:6.2f} s wall, {cpu:6.2f} s CPU, {n / wall:6.2f} images/s")
                if best[name] is None or wall < best[name][0]:
                    best[name] = (wall, cpu)
        print(f"load after:  {_load()}")
        print(f"{'method':28s} {'images/s':>9s} {'wall s':>8s} {'CPU s':>8s} {'CPU ms/image':>13s}")
        rates = {}
        for name, label in (("loop", "plain loop (peer)"), ("beam", "Beam DirectRunner job")):
            wall, cpu = best[name]
            rates[name] = args.images / wall
            print(f"{label:28s} {rates[name]:9.2f} {wall:8.2f} {cpu:8.2f} {1000 * cpu / args.images:13.1f}")
        print(f"Beam / loop throughput: {rates['beam'] / rates['loop']:.3f}x (target >= 0.9x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
