"""`sr-tf export`: a SavedModel for TensorFlow Serving from a catalogue model or a .keras file."""

from __future__ import annotations

import argparse

from sr_tf.cli import runtime
from sr_tf.cli.options import (
    UsageError,
    add_color_fix,
    add_denoise,
    add_noise_level,
    add_threads,
    add_tiling,
)

HELP = "Export a generator as a TF Serving SavedModel (BASE/NAME/VERSION) with pixel and encoded-image signatures."


def add_arguments(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="catalogue name (e.g. realesr-animevideov3-x4), a .keras file or a PyTorch checkpoint (.pth, .safetensors)")
    which.add_argument("--blend", nargs=2, metavar=("A", "B"),
                       help="two models of one architecture, blended in the graph per request: the SavedModel "
                            "gets `blended` signatures with a `strength` input s in 0..1, every weight "
                            "s * A + (1 - s) * B (Real-ESRGAN's -dn; A at s=1, B at s=0; equals "
                            "`sr-tf interpolate --psnr B --gan A --alpha s`)")
    p.add_argument("--out", required=True, help="version directory BASE/NAME/VERSION (VERSION a positive integer)")
    add_tiling(p, "in-graph tile edge in input pixels; 0 = whole image at once (default: %(default)s)",
               aliases=("--tile-size",))
    add_noise_level(p, "the default of the signatures' noise_level input")
    add_color_fix(p, "colour fix inside the graph of both signatures (see sr-tf upscale --color-fix): "
                     "none, wavelet or adain (default: %(default)s)")
    add_denoise(p, "with --blend: the default strength (0..1, default 0.5); with --model of a denoise family "
                   "(Real-CUGAN, waifu2x): export the whole family, its levels -1..3 on the strength axis, and "
                   "this level as the default")
    p.add_argument("--no-warmup", action="store_true", help="do not write assets.extra/tf_serving_warmup_requests")
    p.add_argument("--overwrite", action="store_true", help="replace an existing version directory")
    p.add_argument("--batching", action="append", default=[], metavar="FIELD=VALUE", type=batching_pair,
                   help="this model's own TF Serving BatchingParameters field (repeatable), written to "
                        "VERSION/batching_params.pbtxt and used by servers run with --enable_batching "
                        "--enable_per_model_batching_parameters, e.g. --batching max_batch_size=4 "
                        "--batching batch_timeout_micros=2000 --batching allowed_batch_sizes=1,2,4")
    runtime.add_arguments(p, backend=False)
    add_threads(p)


def batching_pair(text: str) -> tuple[str, object]:
    """`FIELD=VALUE` -> (field, value): true/false, an integer, comma-separated integers (a list), or
    text. Field names are checked by `sr_tf.export.batching_parameters_text`."""
    field, sep, raw = text.partition("=")
    if not sep or not field.strip():
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE, e.g. max_batch_size=4. Received: {text!r}")
    raw = raw.strip()
    parts = [v.strip() for v in raw.split(",")]
    if raw.lower() in ("true", "false"):
        value = raw.lower() == "true"
    elif all(v.lstrip("-").isdigit() for v in parts):
        value = [int(v) for v in parts] if "," in raw or field.strip() == "allowed_batch_sizes" else int(raw)
    else:
        value = raw
    return field.strip(), value


def run(args: argparse.Namespace) -> int:
    from sr_tf.export import ExportConfig, export_savedmodel
    from sr_tf.runtime import load_generator

    config = ExportConfig(tile_size=args.tile, tile_pad=args.tile_pad, warmup=not args.no_warmup,
                          precision=args.precision, batching=dict(args.batching), color_fix=args.color_fix)
    if args.blend is not None:
        from sr_tf.runtime.blends import load_blend

        model = load_blend(*args.blend, args.denoise)
    elif args.denoise is not None:
        from sr_tf.runtime.blends import load_denoise_family

        model = load_denoise_family(args.model, args.denoise)
    else:
        model = load_generator(args.model)
    if args.noise_level is not None:
        if args.blend is not None or args.denoise is not None:
            raise UsageError("--noise-level applies to one SRMD model, not to a blend (--blend, --denoise)")
        from sr_tf.models.srmd import with_noise_level

        model = with_noise_level(model, args.noise_level)  # a ValueError names the flag (sr_tf.cli.main)
    try:
        path = export_savedmodel(model, args.out, config, overwrite=args.overwrite)
    except FileExistsError as err:
        raise UsageError(f"{args.out} exists already: give --overwrite to replace it, or another --out") from err
    signatures = "serving_default, encoded_image"
    what = args.model
    if args.blend is not None or args.denoise is not None:
        signatures += ", blended, encoded_image_blended"
        what = " and ".join(args.blend) if args.blend is not None else f"{args.model}'s denoise family"
        lo, hi = model.range
        signatures += f"; strength {lo:g}..{hi:g}, default {model.default:g}"
    if config.batching:
        signatures += "; batching_params.pbtxt"
    print(f"Exported {what} to {path} ({args.precision}, color fix {args.color_fix}; signatures: {signatures})")
    return 0
