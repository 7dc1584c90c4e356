"""Which architecture a state dict is, and its Keras model with the weights in place.

Each module in `ARCHITECTURES` provides:

* `NAME: str` (as `sr-tf inspect` prints it, e.g. "ESRGAN");
* `detect(state: StateDict) -> dict | None`: the Keras constructor's keyword arguments, all read from the
  tensors' names and shapes, or None when the state dict is not this architecture;
* `build(params: dict) -> keras.Model` (built, i.e. called once on a small input);
* `assign(model, state: StateDict) -> None`: copies every tensor (`state.take` / `conv` / `linear`);
* optionally `describe(params) -> dict` with `scale`, `in_channels`, `out_channels` (as `sr-tf inspect`
  shows them) where the constructor's names are not among `SCALE_KEYS` / `IN_KEYS` / `OUT_KEYS`.

An entry is a module of `sr_tf.checkpoints` ("esrgan") or a fully qualified module name (one with
a dot, e.g. a test's tiny architecture). Order matters only where one architecture's keys are a subset of another's (more specific first).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from sr_tf.checkpoints.state import CheckpointError, StateDict

ARCHITECTURES: tuple[str, ...] = ("esrgan", "realcugan", "span", "dat", "compact", "hat", "swinir", "plksr", "safmn", "omnisr")

# Constructor argument names that say the scale and channel counts, across our models' conventions.
SCALE_KEYS = ("scale", "upscale", "upscale_factor", "up_scale", "upsampling")
IN_KEYS = ("num_in_ch", "in_channels", "in_chans", "in_nc", "in_ch", "num_in_channels", "dim_in")
OUT_KEYS = ("num_out_ch", "out_channels", "out_chans", "out_nc", "out_ch", "num_out_channels", "dim_out")


@dataclass(frozen=True)
class Detected:
    """An architecture recognised in a state dict: its name, module and constructor arguments."""

    name: str
    module: object
    params: dict


def _modules():
    for name in ARCHITECTURES:
        yield importlib.import_module(name if "." in name else f"sr_tf.checkpoints.{name}")


def describe(found: Detected) -> dict:
    """`{"scale", "in_channels", "out_channels"}` of a detected architecture (None where unknown)."""
    own = getattr(found.module, "describe", None)
    if own is not None:
        return {"scale": None, "in_channels": None, "out_channels": None, **own(found.params)}

    def first(keys):
        return next((found.params[k] for k in keys if k in found.params), None)

    return {"scale": first(SCALE_KEYS), "in_channels": first(IN_KEYS), "out_channels": first(OUT_KEYS)}


def what_was_seen(state: StateDict) -> str:
    """One line on an unrecognised state dict: its key groups and the first conv's channels."""
    groups: dict[str, int] = {}
    for key in state:
        head = key.split(".")[0]
        groups[head] = groups.get(head, 0) + 1
    shown = ", ".join(f"{g}.* ({n})" for g, n in list(groups.items())[:6])
    more = f" and {len(groups) - 6} more groups" if len(groups) > 6 else ""
    conv = next((k for k in state if len(state.shape(k)) == 4), None)
    first = f"; the first conv {conv!r} takes {state.shape(conv)[1]} channels" if conv else "; no conv weights"
    return f"{len(state)} tensors in {shown}{more}{first}"


def detect(state: StateDict) -> Detected:
    """The first architecture whose `detect` accepts `state`; `CheckpointError` listing the tried ones if none."""
    for module in _modules():
        params = module.detect(state)
        if params is not None:
            return Detected(module.NAME, module, params)
    names = ", ".join(m.NAME for m in _modules()) or "(no architecture is registered)"
    raise CheckpointError(f"unknown architecture: {what_was_seen(state)}; none of these matched: {names}")


def build_and_assign(state: StateDict):
    """`(keras.Model, Detected)` for `state`, every tensor used (or `CheckpointError`)."""
    found = detect(state)
    model = found.module.build(found.params)
    found.module.assign(model, state)
    state.finish()
    return model, found
