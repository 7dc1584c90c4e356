"""`sr-tf train`: train a generator (and discriminator) from a recipe, resumably."""

from __future__ import annotations

import argparse

HELP = "Train a super-resolution model from a recipe or TOML config (resumes an existing --out)."


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
                   help="use the last N images (by name) of a --data folder for validation instead of "
                        "training; the rest are held in memory and cropped there (small folders only)")
    p.add_argument("--hr-downscale", type=int, default=1,
                   help="with --val-split: downscale every image by this integer factor (antialiased MATLAB bicubic, "
                        "as sr-tf evaluate --hr-downscale) before use; 2 hides JPEG artefacts")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs, config, final generator)")
    p.add_argument("--steps", type=int, default=None, help="shortcut for --set total_steps=N")
    p.add_argument("--resume", action="store_true",
                   help="require an existing run to continue (an existing run is resumed anyway)")
    p.add_argument("--no-resume", action="store_true", help="refuse to continue an existing run directory")
    p.add_argument("--init-from", default=None,
                   help="initial generator weights: a run directory (e.g. stage 1), .keras or .weights.h5 file")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop after this much wall time (validating and checkpointing first); rerun to resume")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from sr_tf.training import folder_data as fd
    from sr_tf.training.configs import load_config
    from sr_tf.training.distribute import batched_dataset_fn
    from sr_tf.training.trainer import latest_checkpoint, train

    overrides = list(args.overrides) + ([f"total_steps={args.steps}"] if args.steps is not None else [])
    config = load_config(args.config, overrides)
    if args.resume and latest_checkpoint(args.out) is None:
        raise SystemExit(f"sr-tf train: --resume given but {args.out} has no checkpoint.")
    scale = config.data.scale
    if args.hr_downscale < 1:
        raise SystemExit(f"sr-tf train: --hr-downscale must be >= 1. Received: --hr-downscale={args.hr_downscale}")
    if args.hr_downscale > 1 and not args.val_split:
        raise SystemExit("sr-tf train: --hr-downscale works with --val-split (images held in memory); downscale "
                         "pipeline data when building it, so training and validation images stay alike.")
    down = args.hr_downscale
    if args.val_split:
        if args.data_source != "folder" or config.data.degradation != "bicubic":
            raise SystemExit("sr-tf train: --val-split works with a --data folder and bicubic degradation only.")
        files = fd.image_files(args.data)
        if args.val_split >= len(files):
            raise SystemExit(f"--val-split must leave training images. Received: --val-split={args.val_split} "
                             f"with {len(files)} images")
        files, val_files = files[: -args.val_split], files[-args.val_split:]
        patches = fd.patch_dataset([fd.load_image(f, down) for f in files], scale, config.data.hr_patch_size, seed=config.seed)
        dataset_fn = batched_dataset_fn(patches, config.data.batch_size, repeat=False)
        described = f"{len(files)} images"
    else:
        from sr_tf.data import DatasetConfig, build_dataset

        data_config = DatasetConfig(
            path=args.data, source=args.data_source, scale=scale, patch_size=config.data.hr_patch_size,
            batch_size=config.data.batch_size, degradation=config.data.degradation, seed=config.seed,
        )

        def dataset_fn(ctx):
            return build_dataset(data_config, ctx)

        val_files = fd.image_files(args.val_data) if args.val_data else []
        described = f"{args.data} ({args.data_source}, {config.data.degradation})"
    val = None
    print(f"Training {config.name} on {described}, validating on {len(val_files)} images.")
    if val_files:
        pairs = fd.validation_pairs([fd.load_image(f, down) for f in val_files], scale)
        val = fd.pairs_dataset(pairs)
        baseline = fd.bicubic_baseline(pairs, scale)
        print(f"Bicubic baseline on the validation images: PSNR-Y {baseline:.3f} dB (border {scale}).")
    result = train(
        config,
        dataset_fn,
        args.out,
        val_dataset=val,
        init_from=args.init_from,
        resume=not args.no_resume,
        progress=not args.no_progress,
        time_limit_s=None if args.max_minutes is None else args.max_minutes * 60,
    )
    best = "n/a" if result.best_psnr is None else f"{result.best_psnr:.3f} dB"
    print(f"Done at step {result.step}; best validation PSNR-Y {best}. Generator: {args.out}/generator.keras")
    return 0
