"""`sr-tf batch-predict`: a Vertex-AI-style batch prediction job on Apache Beam (thin shell over sr_tf.batch)."""

from __future__ import annotations

import argparse
import sys

from sr_tf.batch.config import BatchConfig
from sr_tf.cli import runtime
from sr_tf.cli.options import (
    UsageError,
    add_color_fix,
    add_progress,
    add_quality,
    add_strip_metadata,
    add_threads,
    add_tiling,
)

HELP = ("Upscale a folder, bucket prefix, glob, file list, JSONL or TFRecord of images as an Apache Beam job "
        "(DirectRunner here; any Beam runner with --runner ...), writing SR images and "
        "prediction.results-* / prediction.errors_stats-* JSONL files.")

EPILOG = (
    "Any Apache Beam pipeline option is passed through to Beam, e.g. --runner DataflowRunner "
    "--project P --region R --temp_location gs://B/tmp --extra_package dist/sr_tf-0.1.0-py3-none-any.whl (from `pip wheel --no-deps -w dist .`) "
    "--num_workers 8. "
    "gs:// paths use google-cloud-storage and honour STORAGE_EMULATOR_HOST. "
    "Exit status: 0 when every input succeeded, 1 when any failed, 2 for bad arguments."
)


PASS_UNKNOWN = True  # options that are not ours go to Apache Beam, checked by its own option classes


class _PassToBeam(argparse.Action):
    """Collects a Beam option, as typed, into `beam_args` for Beam's own parser."""

    def __call__(self, parser, namespace, values, option_string=None):
        flags = list(getattr(namespace, "beam_args", None) or [])
        if values is None or self.nargs == 0:
            flags.append(option_string)
        elif isinstance(values, list):
            flags.extend([option_string, *map(str, values)])
        else:
            flags.append(f"{option_string}={values}")
        namespace.beam_args = flags


def _beam_actions() -> list[argparse.Action]:
    """The options Beam's `PipelineOptions` classes define (read from Beam, so new ones come along)."""
    try:
        from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser
    except ImportError:
        return []
    parser = _BeamArgumentParser(allow_abbrev=False)
    seen = {}
    for cls in PipelineOptions.__subclasses__():
        seen.setdefault(str(cls), cls)
    for cls in seen.values():
        try:
            cls._add_argparse_args(parser)  # how Beam itself collects its options
        except argparse.ArgumentError:
            continue
    return [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


def beam_arguments(unknown: list[str]) -> list[str]:
    """The command line's options that are not ours, checked against Beam's and written `--name=value`.

    Beam is imported here, not in `add_arguments`: `--help` and our own argument errors stay fast.
    Raises `UsageError` for an option that is neither ours nor Beam's (Beam itself would only warn).
    """
    if not unknown:
        return []
    parser = argparse.ArgumentParser(prog="sr-tf batch-predict", add_help=False, allow_abbrev=False,
                                     exit_on_error=False)
    for action in _beam_actions():
        parser.add_argument(*action.option_strings, action=_PassToBeam, nargs=action.nargs, dest="beam_args")
    parser.set_defaults(beam_args=[])
    try:
        known, rest = parser.parse_known_args(unknown)
    except argparse.ArgumentError as err:  # e.g. a Beam option without its value
        raise UsageError(str(err)) from None
    if rest:
        raise UsageError(f"unrecognized arguments: {' '.join(rest)} (neither an option of sr-tf batch-predict "
                         "nor an Apache Beam pipeline option)")
    return known.beam_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    from sr_tf.batch.config import INSTANCES_FORMATS, OUTPUT_FORMATS

    p.epilog = EPILOG
    p.add_argument("--model", required=True,
                   help="SavedModel directory from `sr-tf export` (local or gs://; a BASE/NAME folder of "
                        "versions uses the newest), a .keras file, a PyTorch checkpoint (.pth, .safetensors) or a catalogue name")
    p.add_argument("--input", required=True,
                   help="images: a folder, gs:// prefix, glob (quote it) or file; or a file list / JSONL / "
                        "TFRecord file (globs allowed)")
    p.add_argument("--output", required=True, help="output folder or gs://bucket/prefix")
    p.add_argument("--instances-format", default="auto", choices=INSTANCES_FORMATS,
                   help="auto: from the input's extension (.jsonl, .tfrecord, .txt = file-list, else images)")
    p.add_argument("--output-format", default="png", choices=list(OUTPUT_FORMATS),
                   help="format of written images; `same` keeps each input's extension (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=8, help="same-shape images per model call (default: %(default)s)")
    p.add_argument("--max-batch-pixels", type=int, default=BatchConfig.max_batch_pixels,
                   help="input pixels per model call at most; large images go one at a time (default: %(default)s)")
    add_tiling(p, "tile edge for .keras/catalogue models; SavedModels tile as exported (default: %(default)s)")
    runtime.add_arguments(p)
    p.add_argument("--max-pixels", type=int, default=BatchConfig.max_pixels,
                   help="inputs with more pixels (H*W, from the header) are reported as errors, not decoded "
                        "(default: %(default)s)")
    p.add_argument("--num-shards", type=int, default=1, help="results / errors files (default: %(default)s)")
    add_quality(p)
    add_strip_metadata(p)
    add_color_fix(p, "colour fix for .keras/catalogue models (see sr-tf upscale); SavedModels have theirs "
                     "from sr-tf export --color-fix (default: %(default)s)")
    p.add_argument("--tfrecord-feature", default=None,
                   help="records are tf.train.Examples with the image in this bytes feature "
                        "(default: each record is an encoded image, as Vertex AI's tf-record format)")
    p.add_argument("--overwrite", action="store_true",
                   help="recompute outputs that exist (default: skip them, so re-runs resume)")
    p.add_argument("--video", action="store_true",
                   help="inputs are videos: their keyframe-aligned segments are spread over the workers and "
                        "each video is joined into OUTPUT/REL with its other streams (see sr-tf upscale-video)")
    from sr_tf.cli.upscale_video import add_encoding_arguments

    add_encoding_arguments(p.add_argument_group("video (with --video)"))
    add_progress(p)
    add_threads(p)


def run(args: argparse.Namespace) -> int:
    from sr_tf.batch.config import BatchConfig

    config = BatchConfig(  # checks the values before Beam or TensorFlow is imported
        model=args.model, input=args.input, output=args.output,
        instances_format=args.instances_format, output_format=args.output_format,
        batch_size=args.batch_size, max_batch_pixels=args.max_batch_pixels, tile=args.tile, tile_pad=args.tile_pad,
        backend=args.backend, precision=args.precision, max_pixels=args.max_pixels, num_shards=args.num_shards,
        quality=args.quality,
        tfrecord_feature=args.tfrecord_feature, overwrite=args.overwrite, strip_metadata=args.strip_metadata,
        color_fix=args.color_fix,
    )
    try:
        from sr_tf.batch.pipeline import run_batch
    except ImportError as err:
        raise UsageError(f"{err}: install the batch extra (pip install 'sr-tf[batch]')") from err
    beam_args = beam_arguments(args.unknown)
    try:
        if args.video:
            from sr_tf.batch.video import run_video_batch
            from sr_tf.cli.upscale_video import video_config

            video = video_config(args, config.batch_size, config.tile, config.tile_pad, None)
            summary = run_video_batch(config, video, beam_args)
        else:
            summary = run_batch(config, beam_args, progress=not args.no_progress)
    except (FileNotFoundError, ValueError):
        raise  # our checks of --model, --input and --output: one line, exit status 2
    except Exception as err:  # the pipeline itself failed (a runner or worker error)
        text = str(err).strip().splitlines()
        print(f"sr-tf batch-predict: the job failed: {text[0] if text else type(err).__name__}", file=sys.stderr)
        return 1
    for uri in summary.results_files + summary.errors_files:
        print(f"Wrote {uri}")
    if summary.skipped:
        print(f"{summary.skipped} outputs existed already and were not recomputed")
    print(summary.line())
    return 0 if summary.failed == 0 else 1
