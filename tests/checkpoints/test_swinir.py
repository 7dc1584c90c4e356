"""SwinIR checkpoints against spandrel's SwinIR: every upsampler, odd sizes that are no window multiple."""

import keras
import numpy as np
import pytest

from sr_tf.checkpoints import CheckpointError, StateDict, load_checkpoint, registry
from sr_tf.models import SwinIR
from tests.checkpoints.files import checkpoint_files
from tests.checkpoints.oracle import (
    photo_crop,
    psnr,
    randomize,
    spandrel_arch,
    state_of,
    torch_forward,
)

# spandrel's SwinIR arguments; its reconstruction width is always 64. img_size only shapes the
# stored attention masks (a multiple of the window), never our model.
PIXELSHUFFLE = dict(in_chans=3, embed_dim=12, depths=[2], num_heads=[2], window_size=4, mlp_ratio=2.0, upscale=2,
                    upsampler="pixelshuffle", resi_connection="1conv")
VARIANTS = [
    PIXELSHUFFLE,
    dict(in_chans=3, embed_dim=12, depths=[2, 1], num_heads=[2, 3], window_size=4, mlp_ratio=2.0, upscale=3,
         upsampler="pixelshuffledirect", resi_connection="3conv"),
    dict(in_chans=3, embed_dim=8, depths=[2], num_heads=[2], window_size=8, mlp_ratio=1.5, upscale=4,
         upsampler="nearest+conv", resi_connection="1conv"),
    dict(in_chans=1, embed_dim=8, depths=[2], num_heads=[2], window_size=7, mlp_ratio=2.0, upscale=1, upsampler="",
         resi_connection="1conv", img_range=255.0, img_size=56),  # a grayscale JPEG model (window 7)
]
LARGE = [
    dict(PIXELSHUFFLE, upscale=3, depths=[1, 2], num_heads=[3, 2], resi_connection="3conv"),
    dict(PIXELSHUFFLE, upscale=8, window_size=8, embed_dim=16, depths=[2, 2], num_heads=[4, 2]),
    dict(VARIANTS[2], upscale=2, depths=[3]),
    dict(VARIANTS[2], upscale=8, resi_connection="3conv"),
    dict(VARIANTS[3], in_chans=3, embed_dim=12, depths=[2, 2], num_heads=[3, 4], img_size=49),
]


# float32 against float32 agrees to 126-140 dB here. 60 dB would let real bugs through: with these
# weights, dropping the shifted-window mask still gives 57-89 dB and the tanh GELU 87-126 dB.
MATCH_DB = 100


# The published networks, detected from spandrel's state dicts without running them.
PUBLISHED = {
    "classical-x4": dict(in_chans=3, embed_dim=180, depths=[6] * 6, num_heads=[6] * 6, window_size=8, mlp_ratio=2.0,
                         upscale=4, upsampler="pixelshuffle", resi_connection="1conv", img_size=48),
    "lightweight-x2": dict(in_chans=3, embed_dim=60, depths=[6] * 4, num_heads=[6] * 4, window_size=8, mlp_ratio=2.0,
                           upscale=2, upsampler="pixelshuffledirect", resi_connection="1conv"),
    "realworld-L-x4": dict(in_chans=3, embed_dim=240, depths=[6] * 9, num_heads=[8] * 9, window_size=8,
                           mlp_ratio=2.0, upscale=4, upsampler="nearest+conv", resi_connection="3conv"),
}


def _spandrel(params, seed=0):
    # 0.5 (not the oracle's default 0.2) sharpens the attention so that its bugs show in the output
    return randomize(spandrel_arch("SwinIR").SwinIR(**params), seed, scale=0.5)


def expected_params(params: dict) -> dict:
    upsampler = params["upsampler"]
    return {"in_chans": params["in_chans"], "embed_dim": params["embed_dim"], "depths": tuple(params["depths"]),
            "num_heads": tuple(params["num_heads"]), "window_size": params["window_size"],
            "mlp_ratio": params["mlp_ratio"], "upscale": params["upscale"],
            "img_range": 255.0 if params["window_size"] == 7 else 1.0, "upsampler": upsampler,
            "resi_connection": params["resi_connection"], "num_feat": 64}


def _check(params, height=13, width=11, seed=0):
    net = _spandrel(params, seed)
    model, found = registry.build_and_assign(StateDict(state_of(net)))
    assert found.name == "SwinIR" and isinstance(model, SwinIR)
    assert found.params == expected_params(params)
    x = photo_crop(height, width, channels=params["in_chans"])
    ours, theirs = model(x).numpy(), torch_forward(net, x)
    assert ours.shape == (1, height * params["upscale"], width * params["upscale"], params["in_chans"])
    assert psnr(ours, theirs) >= MATCH_DB, psnr(ours, theirs)
    return model, net


@pytest.mark.parametrize("params", VARIANTS, ids=lambda p: p["upsampler"] or "x1")
def test_swinir_matches_spandrel(params):
    _check(params)


@pytest.mark.large
@pytest.mark.parametrize("params", LARGE, ids=lambda p: f"{p['upsampler'] or 'x1'}-x{p['upscale']}")
def test_swinir_sweep_matches_spandrel(params):
    _check(params, height=19, width=10)


@pytest.mark.large
@pytest.mark.parametrize("name", PUBLISHED)
def test_the_published_networks_are_detected(name):
    net = spandrel_arch("SwinIR").SwinIR(**PUBLISHED[name])
    shapes = {k: np.broadcast_to(np.float32(0), tuple(v.shape)) for k, v in net.state_dict().items()}
    found = registry.detect(StateDict(shapes))
    assert found.name == "SwinIR" and found.params == expected_params(PUBLISHED[name])


def test_one_traced_function_serves_every_size():
    import tensorflow as tf

    model, net = _check(PIXELSHUFFLE)
    serve = tf.function(model.call, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    for height, width in ((13, 11), (8, 17)):
        x = photo_crop(height, width, index=2)
        traced = serve(tf.constant(x)).numpy()
        assert psnr(traced, model(x).numpy()) >= 100
        assert psnr(traced, torch_forward(net, x)) >= MATCH_DB
    assert serve.experimental_get_tracing_count() == 1  # one graph for both sizes


def test_a_safetensors_file_loads_and_its_keras_file_reloads(tmp_path):
    from sr_tf.checkpoints import convert_checkpoint

    params = VARIANTS[1]
    net = _spandrel(params, seed=3)
    path = checkpoint_files(state_of(net), tmp_path, stem="swinir_x3", formats=("safetensors",))["safetensors"]
    model, found = load_checkpoint(path)
    assert found.params == expected_params(params)
    x = photo_crop(10, 9, index=1)
    assert psnr(model(x).numpy(), torch_forward(net, x)) >= MATCH_DB
    keras_path, _ = convert_checkpoint(path, tmp_path / "swinir_x3.keras")
    reloaded = keras.models.load_model(keras_path)
    np.testing.assert_allclose(reloaded(x).numpy(), model(x).numpy(), atol=1e-6)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_runs_close_to_float32(policy):
    params = expected_params(PIXELSHUFFLE)
    reference = SwinIR(**params)
    x = photo_crop(13, 11)
    want = reference(x).numpy()
    keras.mixed_precision.set_dtype_policy(policy)
    try:
        model = SwinIR(**params)
        model(x)
        model.set_weights(reference.get_weights())
        got = model(x)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert model.get_layer("conv_first").compute_dtype == policy.split("_")[1]
    assert got.dtype == "float32" and np.isfinite(got.numpy()).all()
    assert psnr(got.numpy(), want) >= 40, psnr(got.numpy(), want)  # measured: 67 dB float16, 53 dB bfloat16


def _state():
    return state_of(_spandrel(PIXELSHUFFLE))


def test_a_missing_tensor_is_named():
    tensors = _state()
    del tensors["layers.0.residual_group.blocks.1.attn.proj.bias"]
    with pytest.raises(CheckpointError, match=r"blocks\.1\.attn\.proj\.bias"):
        registry.build_and_assign(StateDict(tensors))


def test_an_extra_tensor_fails():
    tensors = _state()
    tensors["layers.0.residual_group.blocks.0.attn.extra"] = np.zeros((3,), np.float32)
    with pytest.raises(CheckpointError, match=r"blocks\.0\.attn\.extra"):
        registry.build_and_assign(StateDict(tensors))


def test_the_stored_buffers_are_optional():
    net = _spandrel(PIXELSHUFFLE)
    tensors = {k: v for k, v in state_of(net).items() if not k.endswith(("attn_mask", "relative_position_index"))}
    model, found = registry.build_and_assign(StateDict(tensors))
    assert found.params == expected_params(PIXELSHUFFLE)
    x = photo_crop(9, 6)
    assert psnr(model(x).numpy(), torch_forward(net, x)) >= MATCH_DB
