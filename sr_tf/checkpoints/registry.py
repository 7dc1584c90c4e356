"""Which architecture a state dict is, and its Keras model with the weights in place.

Each module in `ARCHITECTURES` provides:

* `NAME: str` (as `sr-tf inspect` prints it, e.g. "ESRGAN");
* `detect(state: StateDict) -> dict | None`: the Keras constructor's keyword arguments, all read from the
  tensors' names and shapes, or None when the state dict is not this architecture;
* `build(params: dict) -> keras.Model` (built, i.e. called once on a small input);
* `assign(model, state: StateDict) -> None`: copies every tensor (`state.take` / `conv` / `linear`).

Order matters only where one architecture's keys are a subset of another's (more specific first).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from sr_tf.checkpoints.state import CheckpointError, StateDict

ARCHITECTURES: tuple[str, ...] = ("esrgan", "realcugan", "span", "compact")


@dataclass(frozen=True)
class Detected:
    """An architecture recognised in a state dict: its name, module and constructor arguments."""

    name: str
    module: object
    params: dict


def _modules():
    for name in ARCHITECTURES:
        yield importlib.import_module(f"sr_tf.checkpoints.{name}")


def detect(state: StateDict) -> Detected:
    """The first architecture whose `detect` accepts `state`; `CheckpointError` listing the tried ones if none."""
    for module in _modules():
        params = module.detect(state)
        if params is not None:
            return Detected(module.NAME, module, params)
    names = ", ".join(m.NAME for m in _modules())
    sample = sorted(state)[:5]
    raise CheckpointError(f"the checkpoint's tensors ({len(state)}, e.g. {sample}) match none of: {names}")


def build_and_assign(state: StateDict):
    """`(keras.Model, Detected)` for `state`, every tensor used (or `CheckpointError`)."""
    found = detect(state)
    model = found.module.build(found.params)
    found.module.assign(model, state)
    state.finish()
    return model, found
