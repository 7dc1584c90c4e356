"""HAT checkpoints against spandrel's HAT, on odd sizes that are no window multiple."""

import keras
import numpy as np
import pytest

from sr_tf.checkpoints import StateDict, registry
from sr_tf.models import HAT
from tests.checkpoints.oracle import (
    photo_crop,
    psnr,
    randomize,
    spandrel_arch,
    state_of,
    torch_forward,
)

# float32 against float32 agrees to 134-142 dB here; see test_swinir.py for why not 60 dB.
MATCH_DB = 100
TINY = dict(in_chans=3, embed_dim=12, depths=[2], num_heads=[2], window_size=4, compress_ratio=3, squeeze_factor=4,
            overlap_ratio=0.5, mlp_ratio=2.0, upscale=2, num_feat=8, resi_connection="1conv")
LARGE = [
    dict(TINY, depths=[2, 1], num_heads=[2, 3], upscale=3, resi_connection="identity"),
    dict(TINY, window_size=8, overlap_ratio=0.25, upscale=4, in_chans=1, qkv_bias=False, patch_norm=False),
    dict(TINY, upscale=1),
    dict(TINY, upscale=8, embed_dim=48, compress_ratio=24, squeeze_factor=24, num_heads=[4]),  # HAT-S's ratios
]
# The published networks (x4), detected from spandrel's state dicts without running them.
PUBLISHED = {
    "HAT-S": dict(embed_dim=144, depths=[6] * 6, num_heads=[6] * 6, compress_ratio=24, squeeze_factor=24),
    "HAT": dict(embed_dim=180, depths=[6] * 6, num_heads=[6] * 6, compress_ratio=3, squeeze_factor=30),
    "HAT-L": dict(embed_dim=180, depths=[6] * 12, num_heads=[6] * 12, compress_ratio=3, squeeze_factor=30),
}


def _spandrel(params, seed=0):
    # 0.5 (not the oracle's default 0.2) sharpens the attention so that its bugs show in the output
    return randomize(spandrel_arch("HAT").HAT(**params), seed, scale=0.5)


def expected_params(params: dict) -> dict:
    return {"in_chans": params.get("in_chans", 3), "embed_dim": params["embed_dim"],
            "depths": tuple(params["depths"]), "num_heads": tuple(params["num_heads"]),
            "window_size": params.get("window_size", 16), "compress_ratio": params["compress_ratio"],
            "squeeze_factor": params["squeeze_factor"], "overlap_ratio": params.get("overlap_ratio", 0.5),
            "mlp_ratio": params.get("mlp_ratio", 2.0), "qkv_bias": params.get("qkv_bias", True),
            "patch_norm": params.get("patch_norm", True), "upscale": params["upscale"], "img_range": 1.0,
            "resi_connection": params.get("resi_connection", "1conv"), "num_feat": params.get("num_feat", 64)}


def _check(params, height=13, width=11):
    net = _spandrel(params)
    model, found = registry.build_and_assign(StateDict(state_of(net)))
    assert found.name == "HAT" and isinstance(model, HAT)
    assert found.params == expected_params(params)
    x = photo_crop(height, width, channels=params["in_chans"])
    ours, theirs = model(x).numpy(), torch_forward(net, x)
    assert ours.shape == (1, height * params["upscale"], width * params["upscale"], params["in_chans"])
    assert psnr(ours, theirs) >= MATCH_DB, psnr(ours, theirs)
    return model, net


def test_hat_matches_spandrel_also_in_one_traced_function_for_two_sizes():
    import tensorflow as tf

    model, net = _check(TINY)
    serve = tf.function(model.call, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    for height, width in ((13, 11), (6, 9)):
        x = photo_crop(height, width, index=4)
        traced = serve(tf.constant(x)).numpy()
        assert psnr(traced, model(x).numpy()) >= 100
        assert psnr(traced, torch_forward(net, x)) >= MATCH_DB
    assert serve.experimental_get_tracing_count() == 1


@pytest.mark.large
@pytest.mark.parametrize("params", LARGE, ids=lambda p: f"x{p['upscale']}-w{p['window_size']}-c{p['in_chans']}")
def test_hat_variants_match_spandrel(params):
    _check(params, height=10, width=17)


@pytest.mark.large
@pytest.mark.parametrize("name", PUBLISHED)
def test_the_published_networks_are_detected(name):
    params = dict(PUBLISHED[name], window_size=16, overlap_ratio=0.5, mlp_ratio=2.0, upscale=4)
    net = spandrel_arch("HAT").HAT(**params)
    shapes = {k: np.broadcast_to(np.float32(0), tuple(v.shape)) for k, v in net.state_dict().items()}
    found = registry.detect(StateDict(shapes))
    assert found.name == "HAT" and found.params == expected_params(params)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_runs_close_to_float32(policy):
    params = expected_params(TINY)
    reference = HAT(**params)
    x = photo_crop(13, 11)
    want = reference(x).numpy()
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        model = HAT(**params)
        model(x)
        model.set_weights(reference.get_weights())
        got = model(x)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert model.get_layer("conv_first").compute_dtype == policy.split("_")[1]
    assert got.dtype == "float32" and np.isfinite(got.numpy()).all()
    assert psnr(got.numpy(), want) >= 40, psnr(got.numpy(), want)  # measured: 70 dB float16, 57 dB bfloat16
