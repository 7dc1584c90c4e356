"""`sr-tf train`: train a generator (and discriminator) from a recipe with `fit`, resumably."""

from __future__ import annotations

import argparse
from dataclasses import replace

from sr_tf.cli.options import add_progress, add_threads

HELP = "Train a super-resolution model from a recipe or TOML/YAML config (resumes an existing --out)."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True,
                   help="recipe name (srcnn, srresnet, srresnet_small, srgan, esrgan_stage1, esrgan_stage2, perpix, "
                        "realesrgan) or a .toml / .yaml file (`base = \"<recipe>\"` plus tables to override)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.g_lr=2e-4 --set generator.kwargs.num_block=4")
    p.add_argument("--data", required=True,
                   help="training data for the sr_tf.data pipeline: a folder of HR images, a make-tfrecords "
                        "folder or a TFDS name (see --data-source)")
    p.add_argument("--data-source", choices=("folder", "tfrecord", "tfds"), default="folder",
                   help="kind of --data (default: %(default)s)")
    p.add_argument("--val-data", default=None, help="folder of HR validation images")
    p.add_argument("--val-split", type=int, default=0,
                   help="validate on the last N images (by name) of a --data folder instead of training on them")
    p.add_argument("--hr-downscale", type=int, default=1,
                   help="downscale every image (training and validation) by this integer factor first "
                        "(antialiased MATLAB bicubic, as sr-tf evaluate --hr-downscale); 2 hides JPEG artefacts")
    p.add_argument("--out", dest="run_dir", required=True, help="run directory (checkpoints, logs, config, final generator)")
    p.add_argument("--steps", type=int, default=None, help="shortcut for --set total_steps=N")
    p.add_argument("--resume", action="store_true",
                   help="require an existing run to continue (an existing run is resumed anyway)")
    p.add_argument("--no-resume", action="store_true", help="refuse to continue an existing run directory")
    p.add_argument("--init-from", default=None,
                   help="initial generator weights: a run directory (e.g. stage 1), .keras or .weights.h5 file, "
                        "or a catalogue model name (see `sr-tf models`; configure the same generator)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop at the end of the epoch (steps_per_epoch steps) in which this much wall time has "
                        "passed, after a checkpoint; rerun the same command to resume")
    add_progress(p, help="a line per epoch instead of a progress bar")
    add_threads(p)
    p.config_flags = {f"data.{key}": flag for key, flag in DATA_FLAGS.items()}  # errors name the flags


# The flags that fill `TrainConfig.data` (library errors name these keys; the CLI shows the flags).
DATA_FLAGS = {"path": "--data", "source": "--data-source", "val_path": "--val-data", "val_split": "--val-split",
              "hr_downscale": "--hr-downscale"}


def run(args: argparse.Namespace) -> int:
    from sr_tf.training.configs import load_config  # no TensorFlow: config mistakes answer at once

    overrides = list(args.overrides) + ([f"total_steps={args.steps}"] if args.steps is not None else [])
    config = load_config(args.config, overrides)
    config.check()
    if args.hr_downscale < 1:
        raise SystemExit(f"sr-tf train: --hr-downscale must be >= 1. Received: --hr-downscale={args.hr_downscale}")
    config.data = replace(config.data, path=args.data, source=args.data_source, val_path=args.val_data,
                          val_split=args.val_split, hr_downscale=args.hr_downscale)
    from sr_tf.training.callbacks import latest_checkpoint
    from sr_tf.training.run import train

    if args.resume and latest_checkpoint(args.run_dir) is None:
        raise SystemExit(f"sr-tf train: --resume given but {args.run_dir} has no checkpoint.")
    print(f"Training {config.name} on {args.data} ({args.data_source}, {config.data.degradation})"
          + (f", validating on the last {args.val_split} images" if args.val_split else "")
          + (f", validating on {args.val_data}" if args.val_data else "") + ".", flush=True)
    result = train(
        config, args.run_dir, init_from=_init_source(args.init_from), resume=not args.no_resume,
        verbose=2 if args.no_progress else 1,
        time_limit_s=None if args.max_minutes is None else args.max_minutes * 60,
        log=lambda message: print(message, flush=True),
    )
    best = "n/a" if result.best_psnr is None else f"{result.best_psnr:.3f} dB"
    print(f"Done at step {result.step}; best validation PSNR-Y {best}. Generator: {args.run_dir}/generator.keras")
    return 0


def _init_source(spec: str | None):
    """`--init-from`: a run directory or `.weights.h5` file as it is; any other model spec (catalogue
    name, `.keras`, PyTorch checkpoint) loaded by the runtime."""
    from pathlib import Path

    if spec is None or Path(spec).is_dir() or spec.endswith(".weights.h5"):
        return spec
    from sr_tf.checkpoints import CheckpointError
    from sr_tf.runtime import load_generator

    try:
        return load_generator(spec)
    except (FileNotFoundError, ValueError, CheckpointError) as err:
        raise SystemExit(f"sr-tf train: --init-from: {err}") from err
