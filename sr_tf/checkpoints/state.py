"""A state dict that checks itself while weights are copied out of it.

`StateDict` wraps `{name: np.ndarray}`. Architecture modules `take` each tensor once, in the layout
Keras wants (`conv`, `linear`, `vector`); `finish()` then fails if any tensor was never used, so a
checkpoint that does not match the detected architecture cannot load half-way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np


class CheckpointError(ValueError):
    """A checkpoint file cannot be read, or its tensors do not match the architecture."""


class StateDict(Mapping):
    """Read-only `{name: float32 np.ndarray}` that records which tensors were taken."""

    def __init__(self, tensors: Mapping[str, np.ndarray]):
        self._tensors = dict(tensors)
        self._taken: set[str] = set()

    def __getitem__(self, key: str) -> np.ndarray:
        return self._tensors[key]

    def __iter__(self):
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def shape(self, key: str) -> tuple[int, ...]:
        """Shape of tensor `key`, or raises `CheckpointError` naming it."""
        if key not in self._tensors:
            raise CheckpointError(f"the checkpoint has no tensor {key!r}")
        return tuple(self._tensors[key].shape)

    def keys_with(self, prefix: str) -> list[str]:
        return [k for k in self._tensors if k.startswith(prefix)]

    def take(self, key: str, shape: Iterable[int] | None = None) -> np.ndarray:
        """The tensor `key` as float32 (marked used); checks `shape` when given."""
        if key not in self._tensors:
            raise CheckpointError(f"the checkpoint has no tensor {key!r}")
        value = np.asarray(self._tensors[key], dtype=np.float32)
        if shape is not None and tuple(value.shape) != tuple(shape):
            raise CheckpointError(f"tensor {key!r} has shape {tuple(value.shape)}, the model expects {tuple(shape)}")
        self._taken.add(key)
        return value

    def conv(self, key: str) -> np.ndarray:
        """A PyTorch Conv2d weight `[out, in, kh, kw]` as a Keras kernel `[kh, kw, in, out]`."""
        value = self.take(key)
        if value.ndim != 4:
            raise CheckpointError(f"tensor {key!r} has shape {value.shape}, a conv weight is 4-D")
        return value.transpose(2, 3, 1, 0)

    def linear(self, key: str) -> np.ndarray:
        """A PyTorch Linear weight `[out, in]` as a Keras Dense kernel `[in, out]`."""
        value = self.take(key)
        if value.ndim != 2:
            raise CheckpointError(f"tensor {key!r} has shape {value.shape}, a linear weight is 2-D")
        return value.T

    def skip(self, *keys: str) -> None:
        """Marks buffers the Keras model recomputes (e.g. attention index tables) as used."""
        for key in keys:
            if key in self._tensors:
                self._taken.add(key)

    def unused(self) -> list[str]:
        return sorted(set(self._tensors) - self._taken)

    def finish(self) -> None:
        """Raises `CheckpointError` listing tensors no layer took."""
        left = self.unused()
        if left:
            more = f" and {len(left) - 8} more" if len(left) > 8 else ""
            raise CheckpointError(f"the model did not use {len(left)} tensors of the checkpoint: {left[:8]}{more}")
