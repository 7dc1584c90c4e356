"""A PyTorch checkpoint is one more `--model`: every file format, the runtime's cache, `sr-tf upscale`,
`sr-tf export` (served graph) and `sr-tf inspect`, against spandrel on the same file's weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.checkpoints.files import FORMATS, checkpoint_files
from tests.checkpoints.oracle import (
    photo_crop,
    psnr,
    randomize,
    spandrel_arch,
    state_of,
    torch_forward,
)
from tests.cli.cli_helpers import run_cli

PARAMS = dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2)


@pytest.fixture(scope="module")
def net():
    return randomize(spandrel_arch("Compact").Compact(**PARAMS), seed=11)


@pytest.fixture(scope="module")
def files(net, tmp_path_factory):
    return checkpoint_files(state_of(net), tmp_path_factory.mktemp("ckpt"), stem="compact_x2")


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SR_TF_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_loads_through_the_runtime_and_matches_spandrel(fmt, net, files, cache):
    from sr_tf.runtime import load_generator, model_spec

    assert model_spec(str(files[fmt])).kind == "checkpoint"
    model = load_generator(str(files[fmt]))
    x = photo_crop(27, 19, index=3)
    assert psnr(model(x).numpy(), torch_forward(net, x)) >= 60


def test_conversion_is_cached_by_content(net, files, cache, monkeypatch):
    from sr_tf.runtime import load_generator

    first = load_generator(str(files["zip"]))
    assert len(list((cache / "checkpoints").glob("*.keras"))) == 1

    def refuse(path):
        raise AssertionError("converted again: the cache was not used")

    monkeypatch.setattr("sr_tf.checkpoints.load_checkpoint", refuse)
    second = load_generator(str(files["zip"]))
    x = photo_crop(9, 13)
    np.testing.assert_array_equal(first(x).numpy(), second(x).numpy())


def test_upscale_and_the_exported_savedmodel_give_the_same_bytes(files, tmp_path):
    import tensorflow as tf

    from sr_tf.imageio import decode_image, encode_image

    src = tmp_path / "in"
    src.mkdir()
    photo = np.round(photo_crop(31, 45, index=5)[0] * 255).astype(np.uint8)
    (src / "crop.png").write_bytes(encode_image(photo, "PNG"))
    env = {"SR_TF_CACHE_DIR": str(tmp_path / "cache")}
    status, _, _, err = run_cli(["upscale", str(src / "crop.png"), "-o", str(tmp_path / "up"), "--model",
                                 str(files["safetensors"]), "--no-progress"], **env)
    assert status == 0, err[-2000:]
    status, _, _, err = run_cli(["export", "--model", str(files["legacy"]), "--out", str(tmp_path / "m" / "c" / "1"),
                                 "--no-warmup"], **env)
    assert status == 0, err[-2000:]
    fn = tf.saved_model.load(str(tmp_path / "m" / "c" / "1")).signatures["encoded_image"]
    served = decode_image(fn(image_bytes=tf.constant([encode_image(photo, "PNG")]))["upscaled_bytes"].numpy()[0])
    upscaled = decode_image((tmp_path / "up" / "crop_out.png").read_bytes())
    assert served.shape == (62, 90, 3) and served.tobytes() == upscaled.tobytes()


def test_inspect_names_the_architecture_and_its_parameters(files, net):
    status, _, out, err = run_cli(["inspect", str(files["zip"]), "--json"])
    assert status == 0, err[-2000:]
    info = json.loads(out)
    assert info["architecture"] == "Compact" and info["scale"] == 2
    assert info["parameters"] == sum(p.numel() for p in net.parameters())
