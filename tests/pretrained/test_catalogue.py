"""The catalogue's real published weights against the ncnn CPU reference."""

import numpy as np
import pytest

from sr_tf.pretrained import CATALOGUE, ncnn_files
from sr_tf.pretrained.entries import REALESRGAN
from sr_tf.runtime import catalogue as catalogue_module
from sr_tf.runtime.catalogue import load_pretrained
from tests.pretrained.ncnn_writer import psnr, run_ncnn
from tests.pretrained.photos import crops

pytest.importorskip("ncnn")


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SR_TF_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "sr_tf_cache"))


@pytest.mark.large
@pytest.mark.parametrize("name", sorted(n for n, e in CATALOGUE.items() if e.source is REALESRGAN))
def test_catalogue_model_matches_ncnn(name):
    model = load_pretrained(name)
    assert model.count_params() == CATALOGUE[name].parameters  # what `sr-tf models` shows without building it
    param, weights = ncnn_files(name)
    for image in crops(32 if "x4plus" in name else 48):
        ours = model(image[None]).numpy()[0]
        ref = run_ncnn(str(param), str(weights), image)
        s = CATALOGUE[name].scale
        assert ours.shape == ref.shape == (image.shape[0] * s, image.shape[1] * s, 3)
        assert psnr(ours, ref) >= 60, name


@pytest.mark.large
def test_second_load_comes_from_the_cache(monkeypatch):
    name = "realesr-animevideov3-x4"
    first = load_pretrained(name)
    assert catalogue_module.cached_path(name).is_file()

    def fail(_):
        raise AssertionError("converted again instead of loading the cache")

    monkeypatch.setattr(catalogue_module, "convert", fail)
    second = load_pretrained(name)
    x = crops(16)[0][None]
    np.testing.assert_array_equal(first(x).numpy(), second(x).numpy())


def test_damaged_cache_entry_is_rebuilt():
    name = "realesr-animevideov3-x2"
    path = catalogue_module.cached_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a keras file")
    model = load_pretrained(name)
    assert model.scale == 2 and path.stat().st_size > 1000


def test_unknown_name_lists_the_catalogue():
    with pytest.raises(KeyError, match="realesrgan-x4plus"):
        load_pretrained("esrgan-nonexistent")


def test_load_model_takes_names_and_keras_files(tmp_path):
    from sr_tf.models import SRVGGNetCompact
    from sr_tf.runtime import load_generator as load_model

    model = SRVGGNetCompact(num_feat=4, num_conv=1, upscale=2)
    x = np.zeros((1, 4, 4, 3), np.float32)
    model(x)
    model.save(tmp_path / "m.keras")
    np.testing.assert_array_equal(load_model(str(tmp_path / "m.keras"))(x).numpy(), model(x).numpy())
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        load_model(str(tmp_path / "missing.keras"))
    with pytest.raises(ValueError, match="neither a catalogue model"):
        load_model("not-a-model")
