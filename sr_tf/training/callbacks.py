"""Keras callbacks behind `sr-tf train` (any `fit` of an `SRModel`/`SRGAN` can use them).

* `RunCheckpoint`: resumable checkpoints of a run directory (weights, optimizers, EMA, step, and
  the state of stateful callbacks), written atomically at epoch ends with the size and SHA-256 of
  their files; `newest_good_checkpoint` picks the newest that verifies, setting damaged newer ones
  aside, and `restore` continues a run from it.
* `BestGenerator`: saves the (EMA) generator whenever `val_psnr_y` improves.
* `StopAtStep`, `TimeLimit`, `StopOnSignal`: end training at a step, after a wall time, or on
  SIGINT/SIGTERM, always at an epoch end so the last checkpoint is the resume point.
* `EarlyStopping`: Keras' own, with its counters saved in checkpoints.
* `StepTensorBoard` and `ImageSummaries`: TensorBoard scalars per epoch and LR/SR/HR images at
  validations, on the optimizer-step axis.

Callbacks with `get_state()` / `set_state(dict)` have that state saved by `RunCheckpoint`, so a
resumed run makes the same decisions (early stopping, best model) as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import keras
import tensorflow as tf

from sr_tf.integrity import atomic_write, atomic_write_text, check_file, file_record, set_aside

CHECKPOINT_DIR = "checkpoints"


def _step(model) -> int:
    return int(keras.ops.convert_to_numpy(model.step))


class RunCheckpoint(keras.callbacks.Callback):
    """Saves `RUN/checkpoints/ckpt-STEP.weights.h5` (+ `.json`) every `every` steps, at the end
    of the epoch, and whenever training stops; keeps the newest `keep`.

    The weights file holds the whole trainer (`model.save_weights`: generator, EMA generator,
    discriminator, both optimizers with their moments and iteration counts, the step). The JSON
    beside it holds the step, the `get_state()` of `stateful` callbacks, the size and SHA-256 of
    the weights file and its own SHA-256; it is written last, so a checkpoint without its JSON (a
    kill mid-save) is ignored, and one damaged afterwards fails `verify_checkpoint`.

    Args:
      run_dir: the run directory (`None`: write nowhere, e.g. a non-chief worker's copy).
      every: steps between checkpoints (a multiple of the epoch length).
      keep: how many checkpoints to keep.
      stateful: callbacks whose state is saved and restored with the weights.
      on_save: called with the step after each checkpoint (tests kill the process there).
    """

    def __init__(self, run_dir: str | Path | None, every: int, keep: int = 3, stateful=(),
                 on_save: Callable[[int], None] | None = None):
        super().__init__()
        self.dir = None if run_dir is None else Path(run_dir) / CHECKPOINT_DIR
        self.every, self.keep = int(every), int(keep)
        self.stateful = list(stateful)
        self.on_save = on_save
        self._saved_step = None

    def on_epoch_end(self, epoch, logs=None):
        step = _step(self.model)
        if step % self.every == 0 or self.model.stop_training:
            self.save(step)

    def on_train_end(self, logs=None):
        step = _step(self.model)
        if step != self._saved_step:
            self.save(step)

    def save(self, step: int) -> None:
        self._saved_step = step
        if self.dir is None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        stem = self.dir / f"ckpt-{step:09d}"
        weights = stem.with_suffix(".weights.h5")
        atomic_write(weights, lambda p: self.model.save_weights(p))
        state = {"step": step, "callbacks": [c.get_state() for c in self.stateful],
                 "files": {weights.name: file_record(weights)}}  # hashed as it lies on disk
        atomic_write_text(stem.with_suffix(".json"), json.dumps({**state, "sha256": _json_digest(state)}))
        for old in checkpoints(self.dir.parent)[: -self.keep]:
            old.unlink(missing_ok=True)  # the JSON first: a kill here leaves weights without one, ignored
            old.with_suffix(".weights.h5").unlink(missing_ok=True)
        if self.on_save is not None:
            self.on_save(step)


class DamagedCheckpointError(ValueError):
    """No checkpoint of a run verifies; the message names each file and what is wrong with it."""


def _json_digest(state: dict) -> str:
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def checkpoints(run_dir: str | Path) -> list[Path]:
    """The saved checkpoints of a run (their `.json` files, written last), oldest first.

    A `.weights.h5` without its `.json` (a kill mid-save) is not a checkpoint; a `.json` is one
    even if its weights went missing afterwards (`verify_checkpoint` then says so)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    return sorted(folder.glob("ckpt-*.json"))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest checkpoint, verified or not (see `newest_good_checkpoint`)."""
    found = checkpoints(run_dir)
    return found[-1] if found else None


def verify_checkpoint(checkpoint: Path) -> str | None:
    """None when a checkpoint can be used, else what is wrong with it (one phrase naming the file).

    Its `.json` must parse and match its own SHA-256, and every file it records (the weights) must
    have the recorded size and SHA-256. Checkpoints written before files were recorded are
    checked for a readable JSON and an existing weights file only.
    """
    checkpoint = Path(checkpoint)
    try:
        state = json.loads(checkpoint.read_text())
        if not isinstance(state, dict) or not isinstance(state.get("step"), int):
            raise ValueError("no step")
    except (OSError, UnicodeDecodeError, ValueError):
        return f"{checkpoint.name} is not a readable checkpoint description (truncated or overwritten)"
    digest = state.pop("sha256", None)
    if digest is not None and digest != _json_digest(state):
        return f"{checkpoint.name} is corrupt: its SHA-256 differs from the recorded one"
    files = state.get("files", {checkpoint.with_suffix(".weights.h5").name: None})
    for name, record in files.items():
        path = checkpoint.with_name(name)
        problem = ("missing" if not path.is_file() else None) if record is None else check_file(path, record)
        if problem:
            return f"{name} is {problem}"
    return None


def _checkpoint_files(checkpoint: Path) -> list[Path]:
    return [p for p in (checkpoint, checkpoint.with_suffix(".weights.h5")) if p.exists()]


def newest_good_checkpoint(run_dir: str | Path, log: Callable[[str], None] = print,
                           set_damaged_aside: bool = True) -> Path | None:
    """The newest checkpoint of `run_dir` that verifies (`verify_checkpoint`); None if it has none.

    Each newer, damaged checkpoint is reported through `log` and, with `set_damaged_aside`, its
    files are renamed to `NAME.damaged` (kept, never deleted), so that the run can go on from the
    good one and write that step again.

    Raises:
      DamagedCheckpointError: checkpoints exist but none verifies; nothing is renamed.
    """
    found = checkpoints(run_dir)
    damaged: list[tuple[Path, str]] = []
    for checkpoint in reversed(found):
        problem = verify_checkpoint(checkpoint)
        if problem is None:
            break
        damaged.append((checkpoint, problem))
    else:
        if damaged:
            listed = "; ".join(problem for _, problem in damaged)
            raise DamagedCheckpointError(
                f"no checkpoint in {Path(run_dir) / CHECKPOINT_DIR} verifies ({listed}); nothing was changed. "
                "Move the damaged files away to start the run again, or use a new `run_dir`.")
        return None
    for bad, problem in damaged:
        if set_damaged_aside:
            moved = [set_aside(p).name for p in _checkpoint_files(bad)]
            log(f"Checkpoint {bad} is damaged ({problem}); set aside as {' and '.join(moved)}; "
                f"going on from {checkpoint.name}.")
        else:
            log(f"Checkpoint {bad} is damaged ({problem}); using {checkpoint.name}.")
    return checkpoint


def restore(model: keras.Model, checkpoint: Path, stateful=()) -> int:
    """Loads a `RunCheckpoint` into a built, compiled model (and its callbacks' state); returns the step.
    Check it with `verify_checkpoint` (or pick it with `newest_good_checkpoint`) first."""
    state = json.loads(checkpoint.read_text())
    model.load_weights(checkpoint.with_suffix(".weights.h5"))
    for callback, saved in zip(stateful, state.get("callbacks", []), strict=False):
        callback.set_state(saved)
    step = _step(model)
    if step != state["step"]:
        raise ValueError(f"{checkpoint}: the weights hold step {step}, the checkpoint says {state['step']}.")
    return step


class EarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' `EarlyStopping`, with its counters kept in checkpoints (`get_state`/`set_state`)."""

    _restored: dict | None = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self._restored:
            self.wait, self.best, self.best_epoch = (self._restored[k] for k in ("wait", "best", "best_epoch"))

    def get_state(self) -> dict:
        best = None if self.best is None else float(self.best)
        return {"wait": int(self.wait), "best": best, "best_epoch": int(self.best_epoch)}

    def set_state(self, state: dict) -> None:
        self._restored = dict(state)


class BestGenerator(keras.callbacks.Callback):
    """Saves `model.eval_generator` to `path` whenever `monitor` (default `val_psnr_y`) improves."""

    def __init__(self, path: str | Path | None, monitor: str = "val_psnr_y", log: Callable[[str], None] = print):
        super().__init__()
        self.path, self.monitor, self.log = (None if path is None else Path(path)), monitor, log
        self.best: float | None = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        value = float(value)
        improved = self.best is None or value > self.best
        if improved:
            self.best = value
            if self.path is not None:
                save_generator(self.model.eval_generator, self.path)
        self.log(f"step {_step(self.model)}: {self.monitor} {value:.3f} (best {self.best:.3f})")

    def get_state(self) -> dict:
        return {"best": self.best}

    def set_state(self, state: dict) -> None:
        self.best = state["best"]


class StopAtStep(keras.callbacks.Callback):
    """Stops training once the model's step counter reaches `total_steps`."""

    def __init__(self, total_steps: int):
        super().__init__()
        self.total_steps = int(total_steps)

    def on_train_batch_end(self, batch, logs=None):
        if _step(self.model) >= self.total_steps:
            self.model.stop_training = True


class TimeLimit(keras.callbacks.Callback):
    """Stops at the end of the epoch in which `seconds` of wall time (from `fit`'s start) pass."""

    def __init__(self, seconds: float, log: Callable[[str], None] = print):
        super().__init__()
        self.seconds, self.log = float(seconds), log
        self.reached = False

    def on_train_begin(self, logs=None):
        self._start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if time.monotonic() - self._start >= self.seconds:
            self.reached = True
            self.model.stop_training = True
            self.log(f"Stopping at step {_step(self.model)}: the time limit of {self.seconds:g} s is reached.")


class StopOnSignal(keras.callbacks.Callback):
    """SIGINT (Ctrl-C) or SIGTERM: finish the epoch, checkpoint, stop. A second SIGINT stops at once
    (the run then resumes from its last checkpoint)."""

    def __init__(self, log: Callable[[str], None] = print):
        super().__init__()
        self.log = log
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame):
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum
        self.log(f"{signal.Signals(signum).name}: stopping at the end of this epoch, after a checkpoint "
                 "(Ctrl-C again to quit now).")

    def on_train_begin(self, logs=None):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)

    def on_epoch_end(self, epoch, logs=None):
        # Not earlier: a resumed run starts at an epoch boundary, where the uninterrupted run
        # validates and checkpoints too.
        if self.received is not None:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


class StepTensorBoard(keras.callbacks.TensorBoard):
    """Keras' `TensorBoard` writing each epoch's scalars at the optimizer step (not the epoch
    number), so runs with different epoch lengths, and resumed runs, share one x axis."""

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(_step(self.model), logs)


class ImageSummaries(keras.callbacks.Callback):
    """After each validation, writes `LR (nearest-upscaled) | SR | HR` strips of the first `count`
    validation batches to TensorBoard (`log_dir/images`, at the optimizer step)."""

    def __init__(self, log_dir: str | Path, dataset: tf.data.Dataset, count: int = 2, monitor: str = "val_psnr_y"):
        super().__init__()
        self.dataset, self.count, self.monitor = dataset, int(count), monitor
        self.writer = tf.summary.create_file_writer(str(Path(log_dir) / "images"))

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor not in (logs or {}):
            return
        step = _step(self.model)
        with self.writer.as_default():
            for index, (lr, hr) in enumerate(self.dataset.take(self.count)):
                sr = tf.clip_by_value(self.model.eval_generator(lr, training=False), 0.0, 1.0)
                up = tf.image.resize(lr, tf.shape(hr)[1:3], method="nearest")
                tf.summary.image(f"lr_sr_hr/{index}", tf.concat([up, sr, tf.cast(hr, tf.float32)], axis=2), step=step)
        self.writer.flush()


@contextlib.contextmanager
def dtype_policy(name: str):
    """Keras' global dtype policy set to `name` while the block runs (layers take it when built)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(previous)


def save_generator(generator: keras.Model, path: str | Path) -> None:
    """Saves a trained generator as a float32 `.keras` file, atomically.

    A generator trained under mixed precision computes in float16/bfloat16; the saved model is a
    float32 copy with the same (float32) weights, so inference keeps float32 unless asked otherwise.
    """
    if generator.dtype_policy.name != "float32":
        with dtype_policy("float32"):
            copy = generator.__class__.from_config({**generator.get_config(), "dtype": "float32"})
            channels = generator.get_build_config()["input_shape"][-1]
            copy(tf.zeros([1, 8, 8, channels]))  # builds every layer (generators take any size)
            copy.set_weights(generator.get_weights())
        generator = copy
    atomic_write(path, lambda p: generator.save(p))
