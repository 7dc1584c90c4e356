"""Helpers shared by the serving tests."""

from __future__ import annotations

import io
import shutil

import numpy as np
from PIL import Image


def reference_upscale(model, pixels: np.ndarray) -> np.ndarray:
    """The Keras model called directly with the export's documented scaling: [0, 255] in and out."""
    out = model(np.clip(pixels, 0, 255).astype(np.float32) / 255.0).numpy()
    return np.round(np.clip(out * 255.0, 0.0, 255.0))


def copy_version(exported, base_path, version: int):
    """Copies an exported version into `base_path/version` atomically (copy, then rename)."""
    base_path.mkdir(parents=True, exist_ok=True)
    tmp = base_path / f".tmp-{version}"
    shutil.copytree(exported, tmp)
    tmp.rename(base_path / str(version))
    return base_path / str(version)


def image_bytes(array: np.ndarray, fmt: str = "PNG", mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format=fmt)
    return buf.getvalue()


def random_pixels(seed: int, shape=(1, 8, 8, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.float32)


def assert_upscaled_equal(actual: np.ndarray, desired: np.ndarray) -> None:
    """Equal whole-number pixels, except that float32 differences between graph and eager kernels
    may move a value across a .5 rounding boundary: at most 1 apart, and rarely (< 0.1%)."""
    actual, desired = np.asarray(actual), np.asarray(desired)
    assert actual.shape == desired.shape, (actual.shape, desired.shape)
    diff = np.abs(actual.astype(np.float64) - desired)
    assert np.nanmax(diff, initial=0) <= 1, f"max difference {np.nanmax(diff)}"
    assert np.mean(diff > 0) < 1e-3, f"{np.mean(diff > 0):.4%} of the values differ"
