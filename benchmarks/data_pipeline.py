"""Training-patch throughput of the sr-tf input pipeline against named peers, in one run.

    python benchmarks/data_pipeline.py [--photos ../shared/data/photos] [--seconds 20] [--crops 8]

Builds TFRecords from the photos as their README suggests (MATLAB-bicubic downscale by 2,
then BasicSR-style 480x480 sub-images, step 240) into a temporary folder, then measures
HR 128 -> LR 32 patches per second (x4) through `build_dataset` for

- `bicubic`: MATLAB-compatible bicubic LR, `crops_per_image` random patches per decoded
  sub-image (and with 1, i.e. one PNG decode per patch), against the peer
  "naive loop": PIL decodes the sub-image PNG, NumPy crops a random 128x128 patch, PIL's
  bicubic makes the 32x32 LR, one patch at a time in one Python process;
- `realesrgan`: Real-ESRGAN's second-order degradation applied to whole batches, against
  the peer "per-patch map": the same degradation function applied to one patch at a time
  (what a straightforward `dataset.map(degrade).batch()` does).

Prints patches/s, CPU milliseconds per patch (this process, all threads: a figure that
depends little on other load; `2000 / ms` estimates patches/s on 2 idle cores), the ratio
ours/peer (> 1: ours faster), and the machine load (`os.getloadavg`) before and after,
since other processes may share the cores.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np

PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "photos"


def build(photos: Path, out: Path) -> tuple[dict, float]:
    from sr_tf.data.records import BuildConfig, make_tfrecords

    start = time.perf_counter()
    result = make_tfrecords(BuildConfig(
        hr_dir=str(photos), output_dir=str(out), num_shards=8, sub_image_size=480, sub_image_step=240,
        downscale_hr=2, workers=2, progress=False,
    ))
    return result.manifest, time.perf_counter() - start


def rate(dataset, seconds: float, warmup: int = 3) -> tuple[float, float]:
    """`(patches per second, CPU milliseconds per patch)` over about `seconds`, after `warmup` batches.

    CPU time is this process's (all its threads): unlike the rate, it hardly depends on what
    else runs on the machine, so `2000 / cpu_ms` estimates the rate on 2 idle cores.
    """
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    count, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        lr, _ = next(iterator)
        count += int(lr.shape[0])
    return count / (time.perf_counter() - start), (time.process_time() - cpu) * 1000 / count


def naive_loop_rate(out: Path, seconds: float) -> tuple[float, float]:
    """The peer: one PNG decode, random crop and PIL bicubic per patch, in a Python loop."""
    import tensorflow as tf
    from PIL import Image

    from sr_tf.data.records import shard_paths

    encoded = [tf.train.Example.FromString(r.numpy()).features.feature["image/encoded"].bytes_list.value[0]
               for path in shard_paths(str(out)) for r in tf.data.TFRecordDataset(path)]
    rng = np.random.default_rng(0)
    count, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        with Image.open(io.BytesIO(encoded[rng.integers(len(encoded))])) as image:
            hr = np.asarray(image.convert("RGB"))
        y, x = rng.integers(0, hr.shape[0] - 127), rng.integers(0, hr.shape[1] - 127)
        patch = hr[y : y + 128, x : x + 128]
        lr = np.asarray(Image.fromarray(patch).resize((32, 32), Image.BICUBIC), np.float32) / 255.0
        _ = patch.astype(np.float32) / 255.0, lr
        count += 1
    return count / (time.perf_counter() - start), (time.process_time() - cpu) * 1000 / count


def per_patch_realesrgan(config, seconds: float) -> tuple[float, float]:
    """The peer: Real-ESRGAN degradation mapped over single patches, then batched."""
    import tensorflow as tf

    from sr_tf.data import build_dataset
    from sr_tf.data.degradations import realesrgan

    patches = build_dataset(config.replace(degradation="bicubic")).unbatch().map(lambda lr, hr: hr)
    seeds = tf.data.Dataset.random(seed=0).batch(2)
    single = tf.data.Dataset.zip(patches, seeds).map(
        lambda hr, seed: (realesrgan(hr, 4, seed, config.realesrgan), hr), num_parallel_calls=tf.data.AUTOTUNE
    )
    return rate(single.batch(config.batch_size).prefetch(tf.data.AUTOTUNE), seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, default=PHOTOS)
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time per line")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--crops", type=int, default=8, help="crops_per_image of the tuned lines")
    parser.add_argument("--keep", type=Path, default=None, help="build the records here (and reuse them) instead of a temp dir")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not args.photos.is_dir():
        raise SystemExit(f"No photos folder at {args.photos}; pass --photos")

    from sr_tf.data import DatasetConfig, build_dataset

    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp) / "records"
        manifest, build_s = build(args.photos, out)
        print(f"records: {manifest['num_records']} sub-images (480x480 after x2 downscale) from {manifest['num_images']} "
              f"photos in {len(manifest['shards'])} shards, built in {build_s:.1f} s (2 workers)")
        from machine import describe

        print(f"before: {describe()}")
        base = DatasetConfig(path=str(out), scale=4, patch_size=128, batch_size=args.batch_size, crops_per_image=args.crops)
        lines = []

        def measure(name, fn):
            value, cpu_ms = fn()
            lines.append((name, value))
            print(f"  {name:62s} {value:7.0f} patches/s   {cpu_ms:6.2f} CPU ms/patch", flush=True)
            return value

        print("HR 128 -> LR 32 (x4), batch", args.batch_size)
        ours = measure(f"sr-tf bicubic, crops_per_image={args.crops}", lambda: rate(build_dataset(base), args.seconds))
        measure("sr-tf bicubic, crops_per_image=1 (a PNG decode per patch)",
                lambda: rate(build_dataset(base.replace(crops_per_image=1)), args.seconds))
        measure(f"sr-tf bicubic, crops_per_image={args.crops}, cache_decoded",
                lambda: rate(build_dataset(base.replace(cache_decoded=True)), args.seconds))
        peer = measure("peer: naive loop (PIL decode + crop + PIL bicubic), 1 process", lambda: naive_loop_rate(out, args.seconds))
        print(f"  ratio sr-tf bicubic / naive loop: {ours / peer:.2f}x")
        esr = base.replace(degradation="realesrgan")
        ours_esr = measure(f"sr-tf realesrgan, batched, crops_per_image={args.crops}", lambda: rate(build_dataset(esr), args.seconds))
        peer_esr = measure("peer: realesrgan mapped per patch, then batched", lambda: per_patch_realesrgan(esr, args.seconds))
        print(f"  ratio sr-tf realesrgan batched / per patch: {ours_esr / peer_esr:.2f}x")
        print(f"load average after: {os.getloadavg()[0]:.2f} (other processes share these cores)")


if __name__ == "__main__":
    main()
