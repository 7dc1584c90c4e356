"""`sr-tf convert`: a PyTorch or safetensors checkpoint into a `.keras` file (written atomically)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sr_tf.cli.options import UsageError

HELP = ("Convert a .pth/.pt/.ckpt/.safetensors checkpoint of a known architecture into a .keras model file "
        "(usable as --model everywhere); see `sr-tf inspect` for what the file holds.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CKPT", help="a .pth/.pt/.ckpt (torch zip or legacy) or .safetensors file")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.keras", help="the .keras file to write")
    p.add_argument("--force", action="store_true", help="replace --output if it exists")


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if output.suffix != ".keras":
        raise UsageError(f"--output must name a .keras file, got {args.output!r}")
    if output.is_dir():
        raise UsageError(f"--output {args.output} is a directory")
    if output.exists() and not args.force:
        raise UsageError(f"--output {args.output} exists already: give --force to replace it")
    if not output.parent.is_dir():
        raise UsageError(f"--output {args.output}: the folder {str(output.parent)!r} does not exist")
    if not Path(args.checkpoint).is_file():
        raise UsageError(f"CKPT {args.checkpoint!r} is not a file")
    from sr_tf.checkpoints import convert_checkpoint, registry

    path, found = convert_checkpoint(args.checkpoint, output, overwrite=args.force)
    facts = registry.describe(found)
    scale = f", x{facts['scale']}" if facts["scale"] is not None else ""
    print(f"Converted {args.checkpoint} ({found.name}{scale}) to {path}")
    return 0
