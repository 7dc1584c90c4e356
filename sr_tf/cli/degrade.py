"""`sr-tf degrade`: make LR test sets from HR images exactly as the training pipeline does."""

from __future__ import annotations

import argparse
import sys

from sr_tf.cli.options import UsageError, add_progress, add_threads, integer

HELP = ("Make LR images from HR images (a file or a folder) with the pipeline's degradations: "
        "bicubic (MATLAB imresize), blur-bicubic, or realesrgan (seeded per file name).")
DEGRADATION_NAMES = ("bicubic", "blur-bicubic", "realesrgan")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="IN", help="HR image file or folder (local or gs://)")
    p.add_argument("output", metavar="OUT",
                   help="output image for a file IN (its extension, .png/.jpg/.webp, sets the format), or a folder "
                        "of PNGs for a folder IN (created if missing)")
    p.add_argument("--scale", type=integer(1), default=4, help="downscale factor (default: %(default)s)")
    p.add_argument("--degradation", choices=DEGRADATION_NAMES, default="bicubic", help="(default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the realesrgan degradation (default: %(default)s)")
    p.add_argument("--blur-sigma", type=float, default=1.6, help="blur-bicubic Gaussian sigma (default: %(default)s)")
    p.add_argument("--blur-kernel-size", type=int, default=7, help="blur-bicubic kernel size (default: %(default)s)")
    p.add_argument("--suffix", default="", help="appended to output stems, e.g. x4 for DIV2K names (default: none)")
    add_progress(p)
    add_threads(p)


def image_seed(seed: int, name: str):
    """The `[2]` stateless seed used for the file called `name`: independent of the other files."""
    import zlib

    import tensorflow as tf

    return tf.random.experimental.stateless_fold_in(tf.constant([seed, 0], tf.int64), zlib.crc32(name.encode()))


def degrade_bytes(data: bytes, name: str, args: argparse.Namespace, fmt: str = "PNG") -> bytes:
    """The degraded image (`[H, W, 3]` -> `[~H/s, ~W/s, 3]` uint8, rounded), encoded as `fmt`
    ("PNG", "JPEG" or "WEBP")."""
    import tensorflow as tf

    from sr_tf.data.decoding import encode_png, load_rgb
    from sr_tf.data.degradations import degrade

    hr = tf.constant(load_rgb(data, name), tf.float32) / 255.0
    options = {}
    if args.degradation == "blur-bicubic":
        options = {"sigma": args.blur_sigma, "kernel_size": args.blur_kernel_size}
    lr = degrade(hr, args.degradation, args.scale, seed=image_seed(args.seed, name), **options)
    array = tf.cast(tf.round(tf.clip_by_value(lr, 0.0, 1.0) * 255.0), tf.uint8).numpy()
    if fmt != "PNG":
        from sr_tf.imageio import encode_image

        return encode_image(array, fmt)
    return encode_png(array, compress_level=6)


def run(args: argparse.Namespace) -> int:
    import posixpath

    import tensorflow as tf
    from tqdm import tqdm

    from sr_tf.data.schema import join
    from sr_tf.imageio import FORMATS, ImageError

    gfile = tf.io.gfile
    if gfile.isdir(args.input):
        names = sorted(n.rstrip("/") for n in gfile.listdir(args.input)
                       if not n.startswith(".") and not gfile.isdir(join(args.input, n.rstrip("/"))))
        jobs = [(join(args.input, n), n, join(args.output, posixpath.splitext(n)[0] + args.suffix + ".png"), "PNG")
                for n in names]
        if posixpath.normpath(args.input) == posixpath.normpath(args.output):
            print("error: OUT must differ from IN (inputs are never overwritten)", file=sys.stderr)
            return 2
        gfile.makedirs(args.output)
    elif gfile.exists(args.input):
        fmt = FORMATS.get(posixpath.splitext(args.output)[1].lower())
        if fmt is None:
            raise UsageError(f"OUT must end in one of {', '.join(FORMATS)} for a file IN. Received: {args.output!r}")
        jobs = [(args.input, posixpath.basename(args.input), args.output, fmt)]
    else:
        print(f"error: no such file or folder: {args.input}", file=sys.stderr)
        return 2
    failed = 0
    for path, name, out, fmt in tqdm(jobs, unit="img", desc="images", disable=args.no_progress):
        try:
            with gfile.GFile(path, "rb") as f:
                encoded = degrade_bytes(f.read(), name, args, fmt)
        except (ImageError, ValueError) as e:
            failed += 1
            tqdm.write(f"skipped {e}", file=sys.stderr)
            continue
        tmp = out + ".partial"
        with gfile.GFile(tmp, "wb") as f:
            f.write(encoded)
        gfile.rename(tmp, out, overwrite=True)
    print(f"{len(jobs) - failed} of {len(jobs)} image(s) degraded ({args.degradation}, x{args.scale}) -> {args.output}")
    return 1 if failed else 0
