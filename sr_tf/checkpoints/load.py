"""A checkpoint file as a Keras model (`load_checkpoint`, `convert_checkpoint`) or as facts (`inspect_checkpoint`).

Importing this module imports no TensorFlow: the architecture modules (and Keras) are imported by
`registry` when a state dict is detected, and `convert_checkpoint` saves through the model itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sr_tf.checkpoints import registry
from sr_tf.checkpoints.reader import read_checkpoint
from sr_tf.checkpoints.state import CheckpointError, StateDict
from sr_tf.integrity import atomic_write


def load_checkpoint(path: str | os.PathLike):
    """`(keras.Model, registry.Detected)` for a `.pth`/`.pt`/`.ckpt`/`.safetensors` file.

    The model is built with every weight of the file in place; its input is `[N, H, W, C] float32
    in [0, 1]`, its output `[N, s*H, s*W, C]`. Raises `CheckpointError` naming `path` when the file
    cannot be read, its architecture is unknown, or a tensor is missing, extra or of the wrong shape.
    """
    ckpt = read_checkpoint(path)
    try:
        return registry.build_and_assign(StateDict(ckpt.tensors))
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from None


def convert_checkpoint(path: str | os.PathLike, output: str | os.PathLike, overwrite: bool = False):
    """Writes the Keras model of checkpoint `path` to `output` (a `.keras` file), atomically.

    Returns `(Path(output), registry.Detected)`. Raises `FileExistsError` when `output` exists and
    not `overwrite`, `ValueError` when `output` does not end in `.keras`, `CheckpointError` as
    `load_checkpoint`. Nothing is left at `output` (or beside it) when anything fails.
    """
    output = Path(output)
    if output.suffix != ".keras":
        raise ValueError(f"output must be a .keras file; Received: output={str(output)!r}")
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists already")
    model, found = load_checkpoint(path)

    def save(tmp: str) -> None:
        model.save(tmp)
        if output.exists() and not overwrite:  # appeared while converting
            raise FileExistsError(f"{output} exists already")

    atomic_write(output, save)
    return output, found


# Last name components of tensors that models recompute or track rather than learn (BatchNorm
# statistics, attention masks and index tables of window-attention models): not parameters.
BUFFER_NAMES = ("running_mean", "running_var", "num_batches_tracked", "relative_position_index", "attn_mask",
                "rpe_biases", "relative_coords_table", "mean", "position_index")


def is_buffer(key: str, value: np.ndarray) -> bool:
    """Whether tensor `key` is a buffer, not a learned parameter (integer tensors, `BUFFER_NAMES`)."""
    last = key.rsplit(".", 1)[-1]
    return value.dtype.kind not in "fc" or any(last == b or last.startswith(b + "_") for b in BUFFER_NAMES)


def _counts(tensors: dict[str, np.ndarray]) -> tuple[int, int]:
    """`(parameter elements, buffer elements)`."""
    buffers = sum(v.size for k, v in tensors.items() if is_buffer(k, v))
    return int(sum(v.size for v in tensors.values()) - buffers), int(buffers)


def inspect_checkpoint(path: str | os.PathLike) -> dict:
    """What a checkpoint holds, without building a model (all values JSON-serialisable).

    Keys: `path`, `format` ("torch zip", "torch legacy", "safetensors"), `wrapper` (the keys unwrapped,
    e.g. "params_ema", or None), `prefix` (removed from every key, e.g. "module."), `architecture`
    (its NAME, or None), `params` (the constructor arguments detected), `scale`, `in_channels`,
    `out_channels`, `tensors` (count), `parameters` (elements of the learned tensors), `buffers`
    (elements of the others: integer tensors, BatchNorm statistics, attention masks; see `is_buffer`), `dtype` (the stored floating-point dtypes, e.g. "float16"),
    `dtypes` (`{stored dtype: tensor count}`), `metadata` (safetensors `__metadata__`, or the scalar
    entries beside the state dict such as `epoch`, `iter`), `unrecognised` (for an unknown
    architecture: one line on what was seen and what was tried; else None).
    """
    ckpt = read_checkpoint(path)
    state = StateDict(ckpt.tensors)
    dtypes: dict[str, int] = {}
    for name in ckpt.stored_dtypes.values():
        dtypes[name] = dtypes.get(name, 0) + 1
    floats = [d for d in dtypes if d.startswith(("float", "bfloat", "complex"))]
    parameters, buffers = _counts(ckpt.tensors)
    info = {
        "path": str(path), "format": ckpt.format, "wrapper": "/".join(ckpt.wrapper) or None,
        "prefix": ckpt.prefix, "architecture": None, "params": None, "scale": None, "in_channels": None,
        "out_channels": None, "tensors": len(state), "parameters": parameters, "buffers": buffers,
        "dtype": "/".join(floats) or None, "dtypes": dtypes, "metadata": dict(ckpt.metadata),
        "unrecognised": None,
    }
    try:
        found = registry.detect(state)
    except CheckpointError as err:
        info["unrecognised"] = str(err)
        return info
    info.update(architecture=found.name, params=_plain(found.params), **_plain(registry.describe(found)))
    return info


def _plain(value):
    """`value` with numpy scalars as Python numbers and tuples as lists (for JSON)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
