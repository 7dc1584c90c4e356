"""The `sr-tf` command line: a thin shell over the library.

Each subcommand lives in its own module under `sr_tf.cli` and defines
`HELP: str`, `add_arguments(parser)` and `run(args) -> int`. Modules are
imported lazily so `sr-tf --help` does not pay for importing TensorFlow.

Rules that keep simple answers fast (tests/cli/test_cli_startup.py checks them): `add_arguments`
imports nothing heavy, and `run` checks its arguments before importing TensorFlow. A verb that
passes unknown options on to another tool (Apache Beam) sets `PASS_UNKNOWN = True` and finds them
in `args.unknown`. User mistakes are one line: `run` raises `UsageError` (exit status 2) or one
of the library's errors (see `_user_error`), and `main` prints it without a traceback
(`--verbose` shows the traceback and TensorFlow's own log lines). Library errors name parameters
(`input`, `tile_pad=3`); `main` translates those that are the verb's options into its flags.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sr_tf.cli.options import UsageError, flag_names

# subcommand name -> module path (a plain dict is the registry).
SUBCOMMANDS: dict[str, str] = {
    "export": "sr_tf.cli.export",
    "serve": "sr_tf.cli.serve",
    "predict": "sr_tf.cli.predict",
    "evaluate": "sr_tf.cli.evaluate",
    "upscale": "sr_tf.cli.upscale",
    "upscale-video": "sr_tf.cli.upscale_video",
    "models": "sr_tf.cli.models",
    "inspect": "sr_tf.cli.inspect_checkpoint",
    "convert": "sr_tf.cli.convert",
    "make-tfrecords": "sr_tf.cli.make_tfrecords",
    "degrade": "sr_tf.cli.degrade",
    "train": "sr_tf.cli.train",
    "interpolate": "sr_tf.cli.interpolate",
    "batch-predict": "sr_tf.cli.batch_predict",
    "vertex-job": "sr_tf.cli.vertex_job",
}

VERBOSE_HELP = "show TensorFlow's log lines, dependencies' warnings and tracebacks of errors"


def _load(name: str):
    return importlib.import_module(SUBCOMMANDS[name])


def _chosen(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """Builds the parser; only the chosen subcommand's module is imported."""
    parser = argparse.ArgumentParser(prog="sr-tf", description="Image super-resolution in TensorFlow.")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else argv
    chosen = _chosen(argv)
    for name in SUBCOMMANDS:
        if name == chosen:
            module = _load(name)
            p = sub.add_parser(name, help=module.HELP, description=module.HELP)
            module.add_arguments(p)
            # SUPPRESS: `sr-tf --verbose VERB` must not be reset by the verb's own default.
            p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
            p.set_defaults(_run=module.run, _pass_unknown=getattr(module, "PASS_UNKNOWN", False), _parser=p)
        else:
            sub.add_parser(name, help=f"(run `sr-tf {name} --help`)", add_help=False)
    return parser


def _user_error(err: BaseException) -> int | None:
    """The exit status for an error that is the user's to fix (shown as one line), else None.

    Ours: `UsageError` and `ValueError` (bad values; the library's image, format and config errors
    derive from it) -> 2, files that are missing, exist or cannot be read -> 2, and any other error
    class defined in `sr_tf` (a server's refusal, a corrupt shard) -> 1.
    """
    if isinstance(err, (ValueError, FileNotFoundError, FileExistsError, IsADirectoryError,
                        NotADirectoryError, PermissionError)):
        return 2
    if type(err).__module__.split(".")[0] == "sr_tf":
        return 1
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "_pass_unknown", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.unknown = unknown
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    from sr_tf._quiet import quiet
    from sr_tf.cli.options import apply_threads

    quiet(verbose=args.verbose)
    apply_threads(getattr(args, "threads", None))
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"sr-tf {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        status = _user_error(err)
        if status is None or args.verbose:
            raise
        text = flag_names(str(err).strip() or type(err).__name__, args._parser)
        prefix = "error: " if isinstance(err, UsageError) else ""
        print(f"sr-tf {args.command}: {prefix}{text}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
