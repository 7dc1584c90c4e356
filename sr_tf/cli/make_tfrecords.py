"""`sr-tf make-tfrecords`: image folders (DIV2K layout) -> sharded TFRecords + manifest."""

from __future__ import annotations

import argparse
import sys

from sr_tf.cli.options import add_progress
from sr_tf.imageio import DEFAULT_MAX_PIXELS

HELP = ("Build sharded TFRecords and a manifest from a folder of HR images (DIV2K layout, optional "
        "X2/X3/X4 LR folders), locally or on gs://. Re-running resumes. With --verify, check a records folder.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="HR_DIR OUT_DIR (build), or RECORDS_DIR with --verify")
    p.add_argument("--lr", dest="lr_dir", default=None,
                   help="folder with DIV2K-style X2/ X3/ X4/ LR folders (e.g. DIV2K_train_LR_bicubic); "
                        "files are matched to HR files by stem (0001.png <-> X4/0001x4.png)")
    p.add_argument("--scales", type=int, nargs="+", default=None,
                   help="LR scales to include (default: every X<s> folder found under --lr)")
    p.add_argument("--num-shards", type=int, default=8, help="number of shard files (default: %(default)s)")
    p.add_argument("--prefix", default="train", help="shard name prefix (default: %(default)s)")
    p.add_argument("--sub-image", type=int, default=0, metavar="SIZE",
                   help="crop HR images into SIZE x SIZE sub-images, as BasicSR does (e.g. 480; default: whole images)")
    p.add_argument("--step", type=int, default=0, help="sub-image step (default: SIZE / 2)")
    p.add_argument("--downscale-hr", type=int, default=1, metavar="FACTOR",
                   help="MATLAB-bicubic downscale HR images first (e.g. 2 for JPEG photos; default: 1 = no)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help="skip images with more pixels than this (default: %(default)s, Pillow's decompression-bomb "
                        "threshold)")
    p.add_argument("--workers", type=int, default=1, help="shards written in parallel (default: %(default)s)")
    p.add_argument("--verify", action="store_true",
                   help="check RECORDS_DIR's shards against its manifest (sizes and SHA-256) instead of building")
    add_progress(p)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from sr_tf.data.records import BuildConfig, CorruptShardError, make_tfrecords, verify_records

    if args.verify:
        if len(args.paths) != 1:
            print(f"error: --verify takes one RECORDS_DIR. Received: {args.paths}", file=sys.stderr)
            return 2
        try:
            manifest = verify_records(args.paths[0], checksum=True)
        except (CorruptShardError, FileNotFoundError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"ok: {len(manifest['shards'])} shards, {manifest['num_records']} records match {args.paths[0]}/manifest.json")
        return 0
    if len(args.paths) != 2:
        print(f"error: expected HR_DIR OUT_DIR. Received: {args.paths}", file=sys.stderr)
        return 2
    options = {}
    if args.max_pixels is not None:
        options["max_pixels"] = args.max_pixels
    try:
        config = BuildConfig(
            hr_dir=args.paths[0], output_dir=args.paths[1], lr_dir=args.lr_dir, scales=args.scales,
            num_shards=args.num_shards, prefix=args.prefix, sub_image_size=args.sub_image, sub_image_step=args.step,
            downscale_hr=args.downscale_hr, workers=args.workers, progress=not args.no_progress, **options,
        )
        result = make_tfrecords(config, log=_warn)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    m = result.manifest
    print(f"{m['num_records']} records from {m['num_images']} images in {len(m['shards'])} shards "
          f"({len(result.built)} written, {len(result.kept)} kept from an earlier run) -> {config.output_dir}")
    if m["num_skipped"]:
        print(f"{m['num_skipped']} input(s) skipped (listed in manifest.json under 'skipped')")
    if m["converted"]:
        print(f"{len(m['converted'])} image(s) re-encoded as 8-bit RGB PNG (listed under 'converted')")
    empty = [s["file"] for s in m["shards"] if not s["records"]]
    if empty:
        _warn(f"{len(empty)} shard(s) hold no records (more shards than images): {empty[:3]}")
    if result.stale:
        _warn(f"files from another build with a different shard count are not in the manifest: {result.stale[:5]}")
    return 0
