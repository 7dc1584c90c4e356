"""Named pretrained models, converted once from their ncnn files to `.keras` and cached.

The catalogue is plain data in `sr_tf.pretrained.entries`; `sr_tf.pretrained.locate` finds the
files. Converted models are cached under `$SR_TF_CACHE_DIR` (or `$XDG_CACHE_HOME/sr_tf`,
`~/.cache/sr_tf`), keyed by the weights' SHA-256, so the second load is a plain `.keras` load.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import keras

import sr_tf.models  # noqa: F401  (registers the classes the cached .keras files name)
from sr_tf.checkpoints import load_checkpoint
from sr_tf.integrity import atomic_write
from sr_tf.pretrained.convert import model_from_ncnn
from sr_tf.pretrained.entries import CATALOGUE
from sr_tf.pretrained.locate import CONVERTER_VERSION, cache_dir, ncnn_files, weight_files
from sr_tf.pretrained.ncnn import load_ncnn

__all__ = ["CATALOGUE", "cache_dir", "cached_path", "convert", "load_pretrained", "ncnn_files"]


def _digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def convert(name: str) -> keras.Model:
    """Converts catalogue model `name` from its ncnn files or PyTorch checkpoint (no cache)."""
    if CATALOGUE[name].format == "pytorch":
        model, _ = load_checkpoint(weight_files(name)[0])
        return model
    param, weights = ncnn_files(name)
    return model_from_ncnn(load_ncnn(str(param), str(weights)), source=str(param))


def cached_path(name: str) -> Path:
    return cache_dir() / f"{name}-{_digest(*weight_files(name))}-v{CONVERTER_VERSION}.keras"


def load_pretrained(name: str) -> keras.Model:
    """Our Keras model for catalogue model `name`, converted on first use and cached.

    Returns a generator mapping `[N, H, W, 3] float32 RGB in [0, 1]` to
    `[N, s*H, s*W, 3] float32` (s = `CATALOGUE[name].scale`).

    Raises:
      KeyError: unknown name. FileNotFoundError: its weights' source is not installed.
    """
    path = cached_path(name)
    if path.is_file():
        try:
            return keras.saving.load_model(path)
        except Exception:  # a damaged cache entry is rebuilt, never trusted
            path.unlink(missing_ok=True)
    model = convert(name)
    atomic_write(path, model.save)
    return model
