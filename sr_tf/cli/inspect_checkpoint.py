"""`sr-tf inspect`: what a PyTorch or safetensors checkpoint holds, read without running its code."""

from __future__ import annotations

import argparse
import json
import sys

HELP = ("Show what a .pth/.pt/.ckpt/.safetensors checkpoint holds: architecture, scale, channels, "
        "hyperparameters, tensors, parameters, stored dtype and the file's own metadata (nothing of it runs).")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CKPT", help="a .pth/.pt/.ckpt (torch zip or legacy) or .safetensors file")
    p.add_argument("--json", action="store_true", help="print one JSON document for scripts")


def _count(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1_000_000 else f"{n / 1e3:.1f}k" if n >= 10_000 else str(n)


def format_report(info: dict) -> str:
    """`inspect_checkpoint`'s dict as aligned lines for people."""
    where = info["format"]
    if info["wrapper"]:
        where += f", state dict under {info['wrapper']!r}"
    if info["prefix"]:
        where += f", prefix {info['prefix']!r} removed"
    rows = [("file", info["path"]), ("format", where)]
    if info["architecture"] is None:
        rows.append(("architecture", "not recognised: " + info["unrecognised"].removeprefix("unknown architecture: ")))
    else:
        rows.append(("architecture", info["architecture"]))
        if info["scale"] is not None:
            rows.append(("scale", f"x{info['scale']}"))
        channels = [f"{info[k]} {k.split('_')[0]}" for k in ("in_channels", "out_channels") if info[k] is not None]
        if channels:
            rows.append(("channels", ", ".join(channels)))
        rows.append(("hyperparameters", ", ".join(f"{k}={v}" for k, v in info["params"].items()) or "-"))
    dtypes = ", ".join(f"{d} ({n})" for d, n in info["dtypes"].items())
    counts = f"{_count(info['parameters'])} parameters"
    if info["buffers"]:
        counts += f", {_count(info['buffers'])} buffer elements"
    rows.append(("tensors", f"{info['tensors']} ({counts}); stored as {dtypes}"))
    if info["metadata"]:
        rows.append(("metadata", ", ".join(f"{k}={v}" for k, v in info["metadata"].items())))
    width = max(len(name) for name, _ in rows) + 2
    return "\n".join(f"{name + ':':<{width}}{value}" for name, value in rows)


def run(args: argparse.Namespace) -> int:
    from sr_tf.checkpoints import inspect_checkpoint

    info = inspect_checkpoint(args.checkpoint)
    if args.json:
        json.dump(info, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(format_report(info))
    return 0
