"""`sr-tf interpolate`: ESRGAN network interpolation between a PSNR and a GAN generator."""

from __future__ import annotations

import argparse

HELP = "Blend two generators of the same architecture: (1 - alpha) * PSNR + alpha * GAN (ESRGAN)."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--psnr", required=True, help="PSNR-oriented generator (.keras, checkpoint or catalogue name)")
    p.add_argument("--gan", required=True, help="GAN-trained generator of the same architecture (.keras, checkpoint or catalogue name)")
    p.add_argument("--alpha", type=float, default=0.8, help="weight of the GAN model in [0, 1] (default: %(default)s)")
    p.add_argument("--out", required=True, help="output .keras file")


def run(args: argparse.Namespace) -> int:
    if not args.out.endswith(".keras"):
        raise SystemExit(f"sr-tf interpolate: --out must end in .keras. Received: --out={args.out!r}")
    from sr_tf.checkpoints import CheckpointError
    from sr_tf.models.interpolate import interpolate_models
    from sr_tf.runtime import load_generator

    try:
        model = interpolate_models(load_generator(args.psnr), load_generator(args.gan), args.alpha)
        model.save(args.out)
    except (ValueError, FileNotFoundError, CheckpointError) as err:
        raise SystemExit(f"sr-tf interpolate: {err}") from err
    print(f"Wrote {args.out} = {1 - args.alpha:g} * {args.psnr} + {args.alpha:g} * {args.gan}")
    return 0
