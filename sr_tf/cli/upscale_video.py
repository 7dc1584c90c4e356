"""`sr-tf upscale-video`: upscale videos, keeping sound, subtitles, timing, rotation and colour."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sr_tf.cli import runtime
from sr_tf.cli.options import add_color_fix, add_progress, add_threads, add_tiling, integer

HELP = ("Upscale videos (files, folders, globs) with a catalogue model, a .keras file or a PyTorch checkpoint; audio and subtitle "
        "streams, timestamps, rotation and colour tags are kept. Resumes where a killed run stopped.")
DEFAULT_MODEL = "realesr-animevideov3-x4"


def add_encoding_arguments(p: argparse.ArgumentParser) -> None:
    """The encoder and segment options (shared with `sr-tf batch-predict --video`)."""
    p.add_argument("--codec", default="libx264",
                   help="encoder of the upscaled stream: libx264, libx265, libvpx-vp9, libsvtav1, ... "
                        "(default: %(default)s)")
    p.add_argument("--crf", type=int, default=None,
                   help="constant rate factor of libx264/libx265/libvpx-vp9/libsvtav1/libaom-av1; lower is better "
                        "(default: 18)")
    p.add_argument("--preset", default=None, help="encoder speed preset, e.g. medium, slow (default: the encoder's)")
    p.add_argument("--pix-fmt", default=None,
                   help="output pixel format, e.g. yuv420p, yuv444p, yuv420p10le (default: the input's, so "
                        "10-bit stays 10-bit where the codec allows)")
    p.add_argument("--segment-seconds", type=float, default=30.0,
                   help="work in segments of about this length, cut on keyframes; finished segments survive a "
                        "kill (default: %(default)s)")


def video_config(args: argparse.Namespace, batch_size: int, tile: int, tile_pad: int, outscale):
    """A `VideoConfig` from the parsed encoding options (raises ValueError for bad values)."""
    from sr_tf.video import VideoConfig

    config = VideoConfig(codec=args.codec, crf=args.crf, preset=args.preset, pix_fmt=args.pix_fmt,
                         segment_seconds=args.segment_seconds, batch_size=batch_size, tile=tile,
                         tile_pad=tile_pad, outscale=outscale)
    config.encoder_options()  # refuses --crf for an encoder without one
    return config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="video files, folders (their videos) or glob patterns")
    p.add_argument("-o", "--output", required=True,
                   help="output folder (NAME_SUFFIX.EXT inside), or with one input an output file such as out.mp4")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL,
                   help="catalogue name, a .keras file or a PyTorch checkpoint (default: %(default)s)")
    p.add_argument("-s", "--scale", type=float, default=None,
                   help="final upscaling factor; the model output is resized when it differs from the model's own")
    add_tiling(p)  # each tile position runs for the whole batch of frames in one model call
    p.add_argument("--batch", type=integer(1), default=4, help="frames per model call (default: %(default)s)")
    runtime.add_arguments(p)
    add_color_fix(p)
    add_encoding_arguments(p)
    p.add_argument("--suffix", default="out", help="appended to output names: NAME_SUFFIX.EXT (default: %(default)s)")
    p.add_argument("--recursive", action="store_true", help="also take videos in sub-folders of input folders")
    add_progress(p)
    add_threads(p)


def _targets(files: list[Path], output: str, suffix: str) -> list[Path]:
    from sr_tf.video import VIDEO_SUFFIXES

    out = Path(output)
    if len(files) == 1 and out.suffix.lower() in VIDEO_SUFFIXES and not out.is_dir():
        return [out]
    return [out / (f"{f.stem}_{suffix}{f.suffix}" if suffix else f.name) for f in files]


def _model_id(spec: str) -> str:
    """A catalogue name, or a file with its size and modification time (so resumed parts match it)."""
    if os.path.isfile(spec):
        st = os.stat(spec)
        return f"{os.path.abspath(spec)}:{st.st_size}:{st.st_mtime_ns}"
    return spec


def run(args: argparse.Namespace) -> int:
    if args.scale is not None and args.scale <= 0:
        print("sr-tf upscale-video: --scale must be positive", file=sys.stderr)
        return 2
    try:
        config = video_config(args, args.batch, args.tile, args.tile_pad, args.scale)
    except ImportError as err:  # PyAV is the `video` extra
        print(f"sr-tf upscale-video: {err}; pip install 'sr-tf[video]'", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"sr-tf upscale-video: {err}", file=sys.stderr)
        return 2
    from sr_tf.cli.upscale import expand_inputs, refuse_overwrite
    from sr_tf.video import VIDEO_SUFFIXES

    files, missing = expand_inputs(args.inputs, args.recursive, suffixes=VIDEO_SUFFIXES)
    files = [f for f in files if not f.name.startswith(".")]  # our own hidden parts and partial outputs
    for pattern in missing:
        print(f"error: {pattern}: no such file, folder or matching files", file=sys.stderr)
    if not files:
        print("sr-tf upscale-video: no input videos", file=sys.stderr)
        return 1

    from tqdm import tqdm

    from sr_tf.cli.upscale import load_model
    from sr_tf.inference import Upscaler
    from sr_tf.video import VideoError, upscale_video

    upscaler = Upscaler(load_model(args.model), args.backend, args.precision, args.color_fix)
    model_id = f"{_model_id(args.model)} ({args.backend}, {args.precision})"
    if args.color_fix != "none":  # other pixels: parts of an earlier run without it are not reused
        model_id += f" color fix {args.color_fix}"
    inputs = {f.resolve() for f in files}
    failures, done = len(missing), 0
    planned: dict[Path, Path] = {}
    for source, target in zip(files, _targets(files, args.output, args.suffix), strict=True):
        refusal = refuse_overwrite(source, target, inputs, planned)
        if refusal:
            print(refusal, file=sys.stderr)
            failures += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        bars: list = []

        def on_start(total: int, finished: int, name=source.name, bars=bars) -> None:
            bars.append(tqdm(total=total, initial=finished, unit="frame", desc=name, disable=args.no_progress))

        try:
            result = upscale_video(source, target, upscaler, config, model_id=model_id,
                                   on_start=on_start, on_frames=lambda n, bars=bars: bars[0].update(n),
                                   log=lambda line: print(f"warning: {line}", file=sys.stderr))
        except VideoError as err:
            print(f"error: {err}", file=sys.stderr)
            failures += 1
            continue
        except Exception as err:  # one bad video must not stop the others
            print(f"error: {source}: {type(err).__name__}: {err}", file=sys.stderr)
            failures += 1
            continue
        finally:
            for bar in bars:
                bar.close()
        done += 1
        kept = f" (kept {result.resumed_segments} of {result.segments} segments from an earlier run)" \
            if result.resumed_segments else ""
        print(f"{source} -> {target}: {result.frames} frames{kept}")
    total = len(files) + len(missing)
    print(f"upscaled {done} of {total} inputs" + (f"; {failures} failed" if failures else ""))
    return 1 if failures else 0
