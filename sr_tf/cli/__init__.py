"""The `sr-tf` command line: a thin shell over the library.

Each subcommand lives in its own module under `sr_tf.cli` and defines
`HELP: str`, `add_arguments(parser)` and `run(args) -> int`. Modules are
imported lazily so `sr-tf --help` does not pay for importing TensorFlow.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand name -> module path (a plain dict is the registry).
SUBCOMMANDS: dict[str, str] = {
    "export": "sr_tf.cli.export",
    "serve": "sr_tf.cli.serve",
    "predict": "sr_tf.cli.predict",
    "evaluate": "sr_tf.cli.evaluate",
    "upscale": "sr_tf.cli.upscale",
    "upscale-video": "sr_tf.cli.upscale_video",
    "make-tfrecords": "sr_tf.cli.make_tfrecords",
    "degrade": "sr_tf.cli.degrade",
    "train": "sr_tf.cli.train",
    "interpolate": "sr_tf.cli.interpolate",
    "batch-predict": "sr_tf.cli.batch_predict",
    "vertex-job": "sr_tf.cli.vertex_job",
}


def _load(name: str):
    return importlib.import_module(SUBCOMMANDS[name])


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """Builds the parser; only the chosen subcommand's module is imported."""
    parser = argparse.ArgumentParser(prog="sr-tf", description="Image super-resolution in TensorFlow.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name in SUBCOMMANDS:
        if name == chosen:
            module = _load(name)
            p = sub.add_parser(name, help=module.HELP, description=module.HELP)
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
        else:
            sub.add_parser(name, help=f"(run `sr-tf {name} --help`)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
