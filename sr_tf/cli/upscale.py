"""`sr-tf upscale`: upscale image files with a pretrained or saved model."""

from __future__ import annotations

import argparse
import glob
import os
import sys
from pathlib import Path

from sr_tf.cli import runtime
from sr_tf.cli.options import (
    add_color_fix,
    add_denoise,
    add_noise_level,
    add_progress,
    add_quality,
    add_strip_metadata,
    add_threads,
    add_tiling,
)

HELP = "Upscale images (files, folders, globs) with a catalogue model, a .keras file or a PyTorch checkpoint."
OUTPUT_FORMATS = ("auto", "png", "jpg", "webp")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="image files, folders (their images) or glob patterns")
    p.add_argument("-o", "--output", required=True, help="output folder (created if missing)")
    p.add_argument("-m", "--model", default="realesrgan-x4plus",
                   help="catalogue name (list them with `sr-tf models`), a .keras file or a PyTorch checkpoint "
                        "(.pth, .safetensors) (default: %(default)s)")
    p.add_argument("-s", "--scale", type=float, default=None,
                   help="final upscaling factor; the model output is resized when it differs from the model's own")
    add_noise_level(p)
    add_denoise(p, "denoise strength for a model of a denoise family (Real-CUGAN, waifu2x): a level on the "
                   "family's -1..3 axis (conservative/no denoising .. denoise3x); between two of its models "
                   "their weights are blended linearly, as Real-ESRGAN's -dn")
    add_tiling(p)
    p.add_argument("--format", choices=OUTPUT_FORMATS, default="auto",
                   help="output format; auto keeps PNG/JPEG/WebP inputs as they are, others become PNG")
    p.add_argument("--suffix", default="out", help="appended to output names: NAME_SUFFIX.EXT (default: %(default)s)")
    add_quality(p)
    add_strip_metadata(p)
    add_color_fix(p)
    p.add_argument("--alpha-mode", choices=("model", "bicubic"), default="model",
                   help="how the alpha channel is upscaled (default: %(default)s)")
    p.add_argument("--recursive", action="store_true", help="also take images in sub-folders of input folders")
    add_progress(p)
    add_threads(p)
    runtime.add_arguments(p)


def expand_inputs(patterns: list[str], recursive: bool = False,
                  suffixes: tuple[str, ...] | None = None) -> tuple[list[Path], list[str]]:
    """Files to process (in order, without duplicates) and the inputs that matched nothing.

    Folders contribute their files with one of `suffixes` (default: the readable image types).
    """
    from sr_tf.imageio import READABLE_SUFFIXES

    suffixes = READABLE_SUFFIXES if suffixes is None else suffixes
    files, missing, seen = [], [], set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            files.append(path)

    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            walker = path.rglob("*") if recursive else path.iterdir()
            for child in sorted(walker):
                if child.is_file() and child.suffix.lower() in suffixes:
                    add(child)
        elif path.is_file():
            add(path)
        elif glob.has_magic(pattern):
            matches = sorted(Path(m) for m in glob.glob(pattern, recursive=True))
            matches = [m for m in matches if m.is_file()]
            if not matches:
                missing.append(pattern)
            for match in matches:
                add(match)
        else:
            missing.append(pattern)
    return files, missing


def output_path(source: Path, out_dir: Path, suffix: str, fmt: str) -> Path:
    ext = source.suffix.lower()
    if fmt == "auto":
        ext = ext if ext in (".png", ".jpg", ".jpeg", ".webp") else ".png"
    else:
        ext = "." + fmt
    name = f"{source.stem}_{suffix}{ext}" if suffix else f"{source.stem}{ext}"
    return out_dir / name


def refuse_overwrite(source: Path, target: Path, inputs: set[Path], planned: dict[Path, Path]) -> str | None:
    """The error line when `target` would overwrite an input or another output of the run, else None
    (and `target` is recorded in `planned`)."""
    resolved = target.resolve()
    if resolved in inputs or (target.exists() and os.path.samefile(target, source)):
        return f"error: {source}: output {target} would overwrite an input; choose another --output or --suffix"
    if resolved in planned:
        return f"error: {source}: output {target} would overwrite the output of {planned[resolved]}"
    planned[resolved] = source
    return None


def load_model(spec: str, denoise: float | None = None):
    """The generator `spec` names; with `denoise`, its denoise family's blend at that level."""
    from sr_tf.checkpoints import CheckpointError
    from sr_tf.runtime import load_generator as load
    from sr_tf.runtime.blends import load_denoise_family

    try:
        if denoise is None:
            return load(spec)
        family = load_denoise_family(spec, denoise)
    except (FileNotFoundError, ValueError, CheckpointError) as e:
        raise SystemExit(f"sr-tf upscale: --model: {e}") from e
    return family.at(denoise)


def run(args: argparse.Namespace) -> int:
    if args.scale is not None and args.scale <= 0:
        print("sr-tf upscale: --scale must be positive", file=sys.stderr)
        return 2
    files, missing = expand_inputs(args.inputs, args.recursive)
    for pattern in missing:
        print(f"error: {pattern}: no such file, folder or matching files", file=sys.stderr)
    if not files:
        print("sr-tf upscale: no input images", file=sys.stderr)
        return 1

    from tqdm import tqdm

    from sr_tf.imageio import ImageError, decode_image, read_bytes, read_metadata, write_image
    from sr_tf.inference import Upscaler, upscale_image

    out_dir = Path(args.output)
    model = load_model(args.model, args.denoise)
    if args.noise_level is not None:
        from sr_tf.models.srmd import with_noise_level

        model = with_noise_level(model, args.noise_level)  # a ValueError names the flag (sr_tf.cli.main)
    try:
        upscaler = Upscaler(model, args.backend, args.precision, args.color_fix)
    except (ImportError, ValueError) as e:
        print(f"sr-tf upscale: {e}", file=sys.stderr)
        return 2
    inputs = {f.resolve() for f in files}
    planned: dict[Path, Path] = {}
    failures = len(missing)
    bar = tqdm(files, unit="img", disable=args.no_progress, desc="images")
    for source in bar:
        target = output_path(source, out_dir, args.suffix, args.format)
        refusal = refuse_overwrite(source, target, inputs, planned)
        if refusal:
            print(refusal, file=sys.stderr)
            failures += 1
            continue
        tiles = tqdm(total=0, unit="tile", leave=False, disable=args.no_progress, desc=source.name)

        def on_tile(done: int, total: int, tiles=tiles) -> None:
            tiles.total = total
            tiles.n = done
            tiles.refresh()

        try:
            data = read_bytes(source)
            image = decode_image(data, str(source))
            result = upscale_image(upscaler, image, tile=args.tile, tile_pad=args.tile_pad,
                                   outscale=args.scale, alpha_mode=args.alpha_mode, on_tile=on_tile)
            metadata = None if args.strip_metadata else read_metadata(data, str(source)).upscaled(
                result.shape[1], result.shape[0])
            write_image(target, result, quality=args.quality, metadata=metadata)
        except ImageError as e:
            print(f"error: {e}", file=sys.stderr)
            failures += 1
        except Exception as e:  # one bad image must not stop the others
            print(f"error: {source}: {type(e).__name__}: {e}", file=sys.stderr)
            failures += 1
        finally:
            tiles.close()
    done = len(files) - (failures - len(missing))
    print(f"upscaled {done} of {len(files) + len(missing)} inputs into {out_dir}" + (f"; {failures} failed" if failures else ""))
    return 1 if failures else 0
