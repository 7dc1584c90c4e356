"""The one training path: a recipe, the `sr_tf.data` pipeline and `SRModel`/`SRGAN.fit`.

`train(config, out_dir)` is `sr-tf train`; `retrain(generator, folder)` fine-tunes an
existing generator through the same function. In `out_dir` a run keeps:

* `config.json`: the full config of the run;
* `checkpoints/`: `RunCheckpoint`s (generator, discriminator, both optimizers, the step, the EMA
  generator, callback state) every `checkpoint_every` steps and when training stops;
* `logs/`: TensorBoard scalars (losses, learning rate, validation PSNR/SSIM) and LR/SR/HR images;
* `generator.keras`: the final (EMA, when enabled) generator; `best_generator.keras`: the one
  with the best validation PSNR-Y.

A run directory that already has checkpoints is resumed from the newest one that verifies
(sizes and SHA-256 recorded in its JSON; damaged newer ones are reported and set aside as
`*.damaged`; if none verifies, the run stops with one line and nothing is changed): weights,
optimizer state and the data stream continue at the saved step
(`build_dataset(..., start_batch=step)`), so a run stopped at any checkpoint, or resumed from an
older one, ends bit-identical to an uninterrupted one (on CPU, where the kernels are deterministic).

Under `MultiWorkerMirroredStrategy` (from `TF_CONFIG`) every worker runs this same function;
only the chief writes into `out_dir`, the others write to a temporary directory.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from sr_tf import metrics as M
from sr_tf.data import DatasetConfig, build_dataset
from sr_tf.data.pipeline import list_images
from sr_tf.data.resize import imresize
from sr_tf.imageio import ImageError, read_header
from sr_tf.models import model_scale
from sr_tf.training import callbacks as C
from sr_tf.training.builders import build_model
from sr_tf.training.configs import (
    DataConfig,
    LossConfig,
    OptimConfig,
    TrainConfig,
    from_dict,
    to_dict,
)
from sr_tf.training.distribute import distribute, is_chief, resolve_mixed_precision, select_strategy
from sr_tf.training.models import SRModel

MEMORY_BUDGET = 2 << 30  # folders whose decoded images fit are held in memory


@dataclass
class TrainResult:
    model: SRModel
    history: dict[str, list[float]]  # keras History: per epoch, val_* at validations
    step: int
    best_psnr: float | None
    stopped_early: bool
    out_of_time: bool


def _decoded_bytes(files: Sequence[str], downscale: int) -> int:
    total = 0
    for path in files:
        with tf.io.gfile.GFile(path, "rb") as f:
            head = f.read(1 << 16)
        try:
            info = read_header(head, path)
        except ImageError:
            continue  # reported by name when the pipeline decodes it
        total += info.width * info.height * 3 // (downscale * downscale)
    return total


def dataset_configs(config: TrainConfig) -> tuple[DatasetConfig, DatasetConfig | None]:
    """The training and (optional) validation `DatasetConfig`s of a run, from `config.data`.

    Validation images are whole images (cropped to a multiple of the scale) with bicubic LR
    rounded to 8 bits, as `sr-tf evaluate` makes them.
    """
    data = config.data
    if not data.path:
        raise ValueError("`data.path` is required: a folder of HR images, a make-tfrecords folder or a TFDS "
                         f"name. Received: data.path={data.path!r}")
    if data.val_split < 0:
        raise ValueError(f"`data.val_split` must be >= 0. Received: data.val_split={data.val_split}")
    common = {"scale": data.scale, "patch_size": data.patch_size, "seed": config.seed, "hr_downscale": data.hr_downscale}
    files: list[str] = []
    val_files: list[str] = []
    if data.val_split:
        if data.source != "folder":
            raise ValueError("`data.val_split` takes the last images of a folder: use data.source='folder'. "
                             f"Received: data.source={data.source!r}")
        files = list_images(data.path)
        if not 0 < data.val_split < len(files):
            raise ValueError(f"`data.val_split` must leave training images. Received: data.val_split={data.val_split} "
                             f"with {len(files)} images")
        files, val_files = files[: -data.val_split], files[-data.val_split:]
    cache = data.cache_decoded
    if cache is None:
        cache = data.source == "folder" and _decoded_bytes(files or list_images(data.path), data.hr_downscale) <= MEMORY_BUDGET
    train = DatasetConfig(path=data.path, source=data.source, batch_size=data.batch_size, degradation=data.degradation,
                          crop_candidates=data.crop_candidates, files=tuple(files), cache_decoded=cache, **common)
    if not (val_files or data.val_path):
        return train, None
    val = DatasetConfig(path=data.val_path or data.path, source="folder", files=tuple(val_files), training=False,
                        validation_crop="full", batch_size=1, degradation="bicubic", cache_decoded=True, **common)
    return train, val


def bicubic_baseline(val: tf.data.Dataset, scale: int) -> float:
    """Mean PSNR-Y (border `scale`) of MATLAB-bicubic upscaling of the 8-bit LR images: the number
    a trained model has to beat (the "bicubic" row of `sr-tf evaluate --convention pipeline`: the LR here
    is resized in floating point and rounded once, as the pipeline makes it)."""
    values = []
    for lr, hr in val:
        sr = tf.round(tf.clip_by_value(imresize(lr, 1.0 / scale), 0.0, 1.0) * 255.0) / 255.0
        values.append(M.psnr(sr, hr, crop_border=scale, y_channel=True).numpy())
    return float(np.mean(np.concatenate(values)))


def _check_run_config(run_dir: Path, config: TrainConfig) -> None:
    saved_path = run_dir / "config.json"
    if not saved_path.exists():
        return
    saved = json.loads(saved_path.read_text())
    current = to_dict(config)
    for key in ("generator", "discriminator", "ema_decay"):
        if saved.get(key) != current.get(key):
            raise ValueError(
                f"{run_dir} holds a run with a different {key} ({saved.get(key)!r}); resume it with the same "
                f"config or use a new `run_dir`. Received: {key}={current.get(key)!r}"
            )


def _check_same_config(src: keras.Model, dst: keras.Model, name: str) -> None:
    """Same class and constructor arguments: some (e.g. SPAN's input normalisation) are not weights."""
    ignored = {"name", "trainable", "dtype"}
    theirs = {k: v for k, v in src.get_config().items() if k not in ignored}
    ours = {k: v for k, v in dst.get_config().items() if k not in ignored}
    if type(src) is not type(dst) or theirs != ours:
        wanted = ", ".join(f"{k}={v!r}" for k, v in theirs.items() if ours.get(k) != v)
        raise ValueError(
            f"`init_from` {name}: that model is a {type(src).__name__} with {wanted or theirs}; configure the "
            f"generator so (now: {type(dst).__name__})."
        )


def _copy_weights(src: keras.Model, dst: keras.Model, where) -> None:
    a, b = src.get_weights(), dst.get_weights()
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b, strict=True)):
        raise ValueError(f"The generator in {where} has a different architecture from the configured one.")
    dst.set_weights(a)


def init_generator_from(model: SRModel, source: str | Path | keras.Model) -> str:
    """Loads generator weights for a new run from a run directory (its latest checkpoint's EMA
    generator when it has one), a `.weights.h5` file, or a generator already loaded (e.g. by
    `sr_tf.runtime.load_generator` from a catalogue name, `.keras` file or checkpoint). The configured
    generator must have the same architecture. Returns what was loaded."""
    if isinstance(source, keras.Model):
        _check_same_config(source, model.generator, source.name)
        _copy_weights(source, model.generator, source.name)
        loaded = source.name
    else:
        path = Path(source)
        if path.is_dir():
            checkpoint = C.newest_good_checkpoint(path, log=print, set_damaged_aside=False)
            if checkpoint is None or not (path / "config.json").is_file():
                raise ValueError(f"`init_from`: no checkpoint in run directory. Received: {str(source)!r}")
            earlier = build_model(from_dict(json.loads((path / "config.json").read_text())))
            earlier.build((None, None, None, 3))
            C.restore(earlier, checkpoint)
            _copy_weights(earlier.eval_generator, model.generator, checkpoint)
            loaded = f"{checkpoint} ({'EMA ' if earlier.ema_generator is not None else ''}generator)"
        elif path.name.endswith(".weights.h5"):
            model.generator.load_weights(path)
            loaded = str(path)
        else:
            raise ValueError("init_from must be a run directory, a .weights.h5 file or a loaded generator "
                             f"(sr_tf.runtime.load_generator loads the other kinds). Received: init_from={str(source)!r}")
    if model.ema_generator is not None:
        model.ema_generator.set_weights(model.generator.get_weights())
    return loaded


def train(
    config: TrainConfig,
    out_dir: str | Path | None = None,
    *,
    init_from: str | Path | keras.Model | None = None,
    generator: keras.Model | None = None,
    strategy: tf.distribute.Strategy | None = None,
    resume: bool = True,
    verbose: int | str = 1,
    time_limit_s: float | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    log: Callable[[str], None] = print,
    on_checkpoint: Callable[[int], None] | None = None,
) -> TrainResult:
    """Trains to `config.total_steps` with `fit`, resuming from `out_dir` when it has checkpoints.

    Args:
      config: the recipe (`sr_tf.training.load_config`) with `config.data.path` set: the images.
      out_dir: the run directory (None: keep nothing on disk, e.g. for `retrain`).
      init_from: generator weights for a new run (stage 2 from a stage-1 run directory, a
        `.weights.h5` file, or a loaded generator).
      generator: train this generator (e.g. an imported pretrained one) instead of building one.
      strategy: a `tf.distribute.Strategy` (default: `select_strategy()`).
      resume: False refuses to continue a run directory that has checkpoints.
      verbose: Keras `fit` verbosity (1: progress bar, 2: a line per epoch, 0: silent).
      time_limit_s: stop at the end of the epoch in which this much wall time has passed
        (checkpointing first); running again resumes.
      callbacks: more Keras callbacks (run before the checkpoint is written).
      log: where progress messages go.
      on_checkpoint: called with the step after each checkpoint (tests kill the process there).
    """
    config.check()
    strategy = strategy or select_strategy()
    policy = resolve_mixed_precision(config.mixed_precision)
    keras.utils.set_random_seed(config.seed)
    train_data, val_data = dataset_configs(config)
    run_dir = None if out_dir is None else Path(out_dir)
    chief = is_chief(strategy)
    scratch = None if chief or run_dir is None else Path(tempfile.mkdtemp(prefix="sr-tf-worker-"))
    write_dir = scratch or run_dir
    existing = C.latest_checkpoint(run_dir) if run_dir is not None else None
    if existing is not None and not resume:
        raise ValueError(f"{run_dir} already holds checkpoints; pass `resume` or choose a new `run_dir`. Found: {existing}")
    if run_dir is not None:
        _check_run_config(run_dir, config)
    if existing is not None:  # before anything is written: raises if no checkpoint verifies
        existing = C.newest_good_checkpoint(run_dir, log=log, set_damaged_aside=chief)

    lr_patch = config.data.patch_size // config.data.scale
    with strategy.scope(), C.dtype_policy(policy or "float32"):
        model = build_model(config, generator=generator)
        model.build((None, lr_patch, lr_patch, 3))

    best = C.BestGenerator(None if write_dir is None else write_dir / "best_generator.keras", log=log)
    stateful: list = [best]
    early = None
    if config.early_stopping_patience is not None:
        early = C.EarlyStopping(monitor="val_psnr_y", mode="max", patience=config.early_stopping_patience)
        stateful.append(early)
    limit = None if time_limit_s is None else C.TimeLimit(time_limit_s, log=log)
    step = 0
    if existing is not None:
        step = C.restore(model, existing, stateful)
        log(f"Resumed from {existing.name} at step {step}.")
    elif init_from is not None:
        log(f"Initialised the generator from {init_generator_from(model, init_from)}.")
    if write_dir is not None:
        write_dir.mkdir(parents=True, exist_ok=True)
        (write_dir / "config.json").write_text(json.dumps(to_dict(config), indent=2))

    val = None if val_data is None else build_dataset(val_data)
    if val is not None:
        log(f"Bicubic baseline on the validation images: PSNR-Y {bicubic_baseline(val, config.data.scale):.3f} dB "
            f"(border {config.data.scale}).")
    run_callbacks = [C.StopAtStep(config.total_steps), C.StopOnSignal(log=log), *([limit] if limit else []),
                     *([early] if early else []), best]
    if write_dir is not None:
        run_callbacks.append(C.StepTensorBoard(str(write_dir / "logs"), write_graph=False))
        if val is not None:
            run_callbacks.append(C.ImageSummaries(write_dir / "logs", val))
    run_callbacks += [*callbacks, C.RunCheckpoint(write_dir, config.checkpoint_every, config.keep_checkpoints,
                                                  stateful, on_save=on_checkpoint)]
    spe = config.steps_per_epoch
    history = {}
    if step < config.total_steps:
        train_ds = distribute(strategy, lambda ctx: build_dataset(train_data, ctx, start_batch=step))
        history = model.fit(
            train_ds, epochs=math.ceil(config.total_steps / spe), initial_epoch=step // spe, steps_per_epoch=spe,
            validation_data=val, validation_freq=config.val_every // spe, callbacks=run_callbacks,
            verbose=verbose, shuffle=False,
        ).history
    if write_dir is not None:
        C.save_generator(model.eval_generator, write_dir / "generator.keras")
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
    return TrainResult(
        model=model, history=history, step=int(model.step.numpy()), best_psnr=best.best,
        stopped_early=bool(early is not None and early.stopped_epoch > 0), out_of_time=bool(limit and limit.reached),
    )


def retrain(
    generator: keras.Model,
    folder: str | Path,
    *,
    steps_per_epoch: int = 100,
    epochs: int = 1,
    patch_size: int = 128,
    batch_size: int = 8,
    learning_rate: float = 1e-4,
    pixel_loss: str = "l1",
    val_folder: str | Path | None = None,
    hr_downscale: int = 1,
    ema_decay: float | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    out_dir: str | Path | None = None,
    seed: int = 0,
    verbose: int | str = "auto",
) -> TrainResult:
    """Fine-tunes `generator` in place on random `patch_size` HR patches of the images in
    `folder` (LR: bicubic downscaling by the generator's scale), through `train`.

    Returns the `TrainResult`: `result.model.eval_generator` is the result (the EMA copy when
    `ema_decay` is set, else `generator` itself); `result.history` has `val_psnr_y` / `val_ssim_y`
    per epoch when `val_folder` is given.
    """
    scale = model_scale(generator)
    config = TrainConfig(
        name="retrain", loss=LossConfig(pixel_loss=pixel_loss), optim=OptimConfig(g_lr=learning_rate),
        data=DataConfig(path=str(folder), scale=scale, patch_size=patch_size, batch_size=batch_size,
                        val_path=None if val_folder is None else str(val_folder), hr_downscale=hr_downscale),
        total_steps=steps_per_epoch * epochs, steps_per_epoch=steps_per_epoch, val_every=steps_per_epoch,
        checkpoint_every=steps_per_epoch * epochs, ema_decay=ema_decay, seed=seed,
    )
    return train(config, out_dir, generator=generator, verbose=verbose, callbacks=callbacks)
