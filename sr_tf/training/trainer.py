"""The resumable training loop behind `sr-tf train`.

`train(config, train_dataset_fn, out_dir, val_dataset=...)` runs `model.train_step` (the same
step `model.fit` uses) under the selected strategy, and in `out_dir` keeps:

* `config.json`: the full config of the run;
* `checkpoints/`: `tf.train.CheckpointManager` checkpoints of generator, discriminator, both
  optimizers (moments and iteration counts), the step, and the EMA generator. TensorFlow writes
  the data files first and then replaces the `checkpoint` index file atomically, so a kill
  during a save leaves the previous checkpoint as the latest; resuming restores it exactly;
* `logs/`: TensorBoard scalars (losses, learning rates, validation PSNR/SSIM) and LR/SR/HR images;
* `generator.keras`: the final (EMA, when enabled) generator, and `best_generator.keras`.

A run directory that already has checkpoints is resumed automatically.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from sr_tf import metrics as M
from sr_tf.training import summaries
from sr_tf.training.builders import build_model
from sr_tf.training.configs import TrainConfig, to_dict
from sr_tf.training.distribute import distribute_dataset, select_strategy


@dataclass
class TrainResult:
    step: int
    best_psnr: float | None
    history: list[dict]  # one dict per validation: step, psnr_y, ssim_y
    stopped_early: bool


def net_variables(model: keras.Model) -> dict[str, tf.Variable]:
    """All weights of a net (BN statistics included) keyed by their path inside the model.

    Keys leave out the model's own name, so a fresh or cloned model (another auto-generated
    name) maps onto the same keys. Checkpoints use these explicit maps rather than the Keras
    object graph, which does not reach layers kept in Python lists (e.g. residual blocks).
    """
    prefix = f"{model.name}/"
    out: dict[str, tf.Variable] = {}
    for weight in model.weights:
        key = weight.path[len(prefix):] if weight.path.startswith(prefix) else weight.path
        if key in out:
            raise ValueError(f"Two weights of model {model.name!r} share the path {key!r}; name the layers uniquely.")
        out[key] = weight.value
    return out


def optimizer_variables(optimizer) -> dict[str, tf.Variable]:
    """Optimizer state (iterations, moments, loss scale) keyed by build order."""
    return {f"{i:04d}": v.value for i, v in enumerate(optimizer.variables)}


def make_checkpoint(model) -> tf.train.Checkpoint:
    """A checkpoint of everything needed to continue: nets, optimizers, step, EMA."""
    objects = {
        "generator": net_variables(model.generator),
        "g_optimizer": optimizer_variables(model.g_optimizer),
        "step": model.step.value,
    }
    if getattr(model, "discriminator", None) is not None:
        objects["discriminator"] = net_variables(model.discriminator)
        objects["d_optimizer"] = optimizer_variables(model.d_optimizer)
    if model.ema_generator is not None:
        objects["ema_generator"] = net_variables(model.ema_generator)
    return tf.train.Checkpoint(**objects)


def latest_checkpoint(run_dir: str | Path) -> str | None:
    return tf.train.latest_checkpoint(str(Path(run_dir) / "checkpoints"))


def init_generator_from(model, source: str | Path) -> str:
    """Loads generator weights from a run directory (its latest checkpoint, EMA weights when
    present), a `.keras` / `.weights.h5` file, or `pretrained:NAME` (`sr_tf.pretrained` catalogue).
    The configured generator must have the same architecture. Returns what was loaded."""
    if str(source).startswith("pretrained:"):
        from sr_tf.pretrained.catalogue import load_pretrained

        name = str(source).split(":", 1)[1]
        _copy_weights(load_pretrained(name), model.generator, f"catalogue model {name!r}")
        if model.ema_generator is not None:
            model.ema_generator.set_weights(model.generator.get_weights())
        return f"catalogue model {name!r}"
    source = Path(source)
    if source.is_dir():
        path = latest_checkpoint(source)
        if path is None:
            raise ValueError(f"--init-from: no checkpoint in run directory. Received: {str(source)!r}")
        reader = tf.train.load_checkpoint(path)
        names = reader.get_variable_to_shape_map()
        key = "ema_generator" if any(n.startswith("ema_generator/") for n in names) else "generator"
        status = tf.train.Checkpoint(**{key: net_variables(model.generator)}).restore(path).expect_partial()
        try:
            status.assert_existing_objects_matched()
        except AssertionError as err:
            raise ValueError(f"--init-from: {path} holds a generator of another architecture.") from err
        loaded = f"{path} ({key})"
    elif source.suffix == ".keras":
        other = keras.saving.load_model(source, compile=False)
        _copy_weights(other, model.generator, source)
        loaded = str(source)
    elif source.name.endswith(".weights.h5"):
        model.generator.load_weights(source)
        loaded = str(source)
    else:
        raise ValueError(f"--init-from takes a run directory, a .keras or a .weights.h5 file. Received: {str(source)!r}")
    if model.ema_generator is not None:
        model.ema_generator.set_weights(model.generator.get_weights())
    return loaded


def _copy_weights(src: keras.Model, dst: keras.Model, where) -> None:
    a, b = src.get_weights(), dst.get_weights()
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b, strict=True)):
        raise ValueError(f"The generator in {where} has a different architecture from the configured one.")
    dst.set_weights(a)


def evaluate(generator: keras.Model, dataset: tf.data.Dataset, crop_border: int, with_ssim: bool = True) -> dict:
    """Mean PSNR-Y / SSIM-Y (dB / [0, 1]) of `generator` over `(lr, hr)` batches, SR clipped to [0, 1]."""
    psnrs, ssims = [], []
    for lr, hr in dataset:
        sr = tf.clip_by_value(generator(lr, training=False), 0.0, 1.0)
        psnrs.append(M.psnr(sr, hr, crop_border=crop_border, y_channel=True).numpy())
        if with_ssim:
            ssims.append(M.ssim(sr, hr, crop_border=crop_border, y_channel=True).numpy())
    out = {"psnr_y": float(np.mean(np.concatenate(psnrs)))}
    if with_ssim:
        out["ssim_y"] = float(np.mean(np.concatenate(ssims)))
    return out


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
                f"config or use a new --out. Received: {key}={current.get(key)!r}"
            )


def _lr_value(optimizer, step) -> float:
    lr = optimizer.learning_rate
    return float(lr(step) if callable(lr) else lr)


def train(
    config: TrainConfig,
    train_dataset_fn: Callable[[tf.distribute.InputContext | None], tf.data.Dataset],
    out_dir: str | Path,
    *,
    val_dataset: tf.data.Dataset | None = None,
    init_from: str | Path | None = None,
    generator: keras.Model | None = None,
    strategy: tf.distribute.Strategy | None = None,
    resume: bool = True,
    progress: bool = True,
    image_summaries: int = 2,
    on_checkpoint: Callable[[int], None] | None = None,
    time_limit_s: float | None = None,
) -> TrainResult:
    """Trains to `config.total_steps`, resuming from `out_dir` when it has checkpoints.

    Args:
      train_dataset_fn: `input_context -> dataset` of per-replica `(lr, hr)` batches, repeated
        (see `sr_tf.training.distribute.batched_dataset_fn`).
      val_dataset: `(lr, hr)` batches for validation every `config.val_every` steps (optional).
      init_from: generator weights for a new run (stage 2 from a stage-1 run directory).
      generator: use this generator (e.g. an imported pretrained one) instead of building it.
      resume: False refuses to continue a run directory that has checkpoints.
      on_checkpoint: called with the step after each checkpoint is written (tests use it to kill).
      time_limit_s: stop (validating and checkpointing first) once this much wall time has passed;
        running again resumes.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    strategy = strategy or select_strategy()
    if config.mixed_precision:
        keras.mixed_precision.set_dtype_policy(config.mixed_precision)
    keras.utils.set_random_seed(config.seed)
    _check_run_config(out_dir, config)
    existing = latest_checkpoint(out_dir)
    if existing and not resume:
        raise ValueError(f"{out_dir} already holds checkpoints; pass --resume or choose a new --out. Found: {existing}")

    per_replica_batch = config.data.batch_size // strategy.num_replicas_in_sync
    if per_replica_batch * strategy.num_replicas_in_sync != config.data.batch_size:
        raise ValueError(
            f"data.batch_size must be divisible by the {strategy.num_replicas_in_sync} replicas. "
            f"Received: batch_size={config.data.batch_size}"
        )
    dist_ds = distribute_dataset(strategy, train_dataset_fn)
    spec = train_dataset_fn(tf.distribute.InputContext()).element_spec
    with strategy.scope():
        model = build_model(config, generator=generator)
        model.build_all(spec[0].shape, spec[1].shape)
        checkpoint = make_checkpoint(model)
    manager = tf.train.CheckpointManager(
        checkpoint, str(out_dir / "checkpoints"), max_to_keep=config.keep_checkpoints
    )
    if existing:
        checkpoint.restore(existing).assert_existing_objects_matched()
        print(f"Resumed from {existing} at step {int(model.step.numpy())}.")
    elif init_from is not None:
        print(f"Initialised the generator from {init_generator_from(model, init_from)}.")
    (out_dir / "config.json").write_text(json.dumps(to_dict(config), indent=2))

    state_path = out_dir / "best.json"
    state = json.loads(state_path.read_text()) if existing and state_path.exists() else {"best_psnr": None, "bad": 0}
    history: list[dict] = []

    @tf.function(reduce_retracing=True)
    def step_fn(iterator):
        strategy.run(model.train_step, args=(next(iterator),))

    writer = tf.summary.create_file_writer(str(out_dir / "logs"))
    iterator = iter(dist_ds)
    step = int(model.step.numpy())
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=config.total_steps, initial=step, desc=config.name, dynamic_ncols=True)
    stopped_early = False
    started = time.monotonic()
    try:
        while step < config.total_steps:
            step_fn(iterator)
            step = int(model.step.numpy())
            out_of_time = time_limit_s is not None and time.monotonic() - started > time_limit_s
            last = step == config.total_steps or out_of_time
            if bar is not None:
                bar.update(1)
            if step % config.log_every == 0 or last:
                logs = {n: float(t.result()) for n, t in model._train_trackers.items()}
                for t in model._train_trackers.values():
                    t.reset_state()
                with writer.as_default():
                    for name, value in logs.items():
                        summaries.scalar(f"train/{name}", value, step)
                    summaries.scalar("train/g_lr", _lr_value(model.g_optimizer, model.g_optimizer.iterations), step)
                if bar is not None:
                    bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if math.isfinite(v)})
            if val_dataset is not None and (step % config.val_every == 0 or last):
                result = evaluate(model.eval_generator, val_dataset, config.data.scale)
                result["step"] = step
                history.append(result)
                _write_validation(writer, model, val_dataset, result, image_summaries)
                if state["best_psnr"] is None or result["psnr_y"] > state["best_psnr"]:
                    state = {"best_psnr": result["psnr_y"], "bad": 0, "step": step}
                    model.eval_generator.save(out_dir / "best_generator.keras")
                else:
                    state["bad"] += 1
                (out_dir / "best.json").write_text(json.dumps(state))
                message = f"step {step}: val PSNR-Y {result['psnr_y']:.3f} dB (best {state['best_psnr']:.3f})"
                if bar is not None:
                    bar.write(message)
                else:
                    print(message, flush=True)
                patience = config.early_stopping_patience
                if patience is not None and state["bad"] >= patience:
                    stopped_early = True
            if step % config.checkpoint_every == 0 or last or stopped_early:
                manager.save(checkpoint_number=step)
                if on_checkpoint is not None:
                    on_checkpoint(step)
            if out_of_time:
                print(f"Stopping at step {step}: the time limit of {time_limit_s:g} s is reached.")
                break
            if stopped_early:
                print(f"Early stopping at step {step}: no PSNR gain in {config.early_stopping_patience} validations.")
                break
    finally:
        if bar is not None:
            bar.close()
        writer.flush()
    model.eval_generator.save(out_dir / "generator.keras")
    return TrainResult(step=step, best_psnr=state["best_psnr"], history=history, stopped_early=stopped_early)


def _write_validation(writer, model, val_dataset, result, image_summaries: int) -> None:
    step = result["step"]
    with writer.as_default():
        summaries.scalar("val/psnr_y", result["psnr_y"], step)
        if "ssim_y" in result:
            summaries.scalar("val/ssim_y", result["ssim_y"], step)
        if image_summaries:
            lr, hr = next(iter(val_dataset))
            sr = tf.clip_by_value(model.eval_generator(lr, training=False), 0.0, 1.0)
            up = tf.image.resize(lr, tf.shape(hr)[1:3], method="nearest")
            summaries.image("val/lr_sr_hr", tf.concat([up, sr, hr], axis=2), step, max_outputs=image_summaries)
