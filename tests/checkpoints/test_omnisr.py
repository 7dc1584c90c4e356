"""OmniSR checkpoints against spandrel's OmniSR: every file format, odd sizes (no window multiple)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from sr_tf.checkpoints import CheckpointError, StateDict, load_checkpoint, registry
from sr_tf.models import OmniSR
from tests.checkpoints.files import FORMATS, checkpoint_files
from tests.checkpoints.oracle import (
    photo_crop,
    psnr,
    randomize,
    spandrel_arch,
    state_of,
    torch_forward,
)

# spandrel's arguments (all of them, as detection must give them back) and an input size that is no
# multiple of the window. PyTorch needs the padded input to be at least 15 pixels (ESA's pool).
TINY = dict(num_in_ch=3, num_out_ch=3, num_feat=8, block_num=1, pe=True, window_size=4, res_num=1, up_scale=2,
            bias=True)
VARIANTS = [
    (TINY, (17, 15)),
    (dict(TINY, num_feat=12, block_num=2, window_size=5, up_scale=4), (23, 19)),  # a window that divides no power of 2
    (dict(TINY, num_in_ch=1, num_out_ch=1, up_scale=1), (18, 22)),  # greyscale restoration (x1)
]
# the file-format test's: no position bias (so the window is not stored: 8 is assumed), no biases,
# two groups, x3
NO_PE = dict(TINY, pe=False, window_size=8, res_num=2, up_scale=3, bias=False)
PUBLISHED_X4 = dict(num_in_ch=3, num_out_ch=3, num_feat=64, block_num=1, pe=True, window_size=8, res_num=5,
                    up_scale=4, bias=True)

# float32 against float32 agrees to ~140 dB. With these weights (x0.5), a tanh GELU still scores 85 dB,
# no position bias 42 dB: 100 dB catches what 60 dB would let through.
MATCH_DB = 100


def _spandrel(params, seed=0):
    # 0.5 (not the oracle's default 0.2) sharpens the attention so that its bugs show in the output
    return randomize(spandrel_arch("OmniSR").OmniSR(**params), seed, scale=0.5)


def _check(model, net, params, size, index=0):
    x = photo_crop(*size, index=index, channels=params["num_in_ch"])
    ours, theirs = model(x).numpy(), torch_forward(net, x)
    assert np.isfinite(theirs).all() and theirs.std() > 0.01  # the oracle's output is no constant
    assert ours.shape == theirs.shape == (1, size[0] * params["up_scale"], size[1] * params["up_scale"],
                                          params["num_out_ch"])
    score = psnr(ours, theirs)
    print(f"OmniSR {params} {size}: {score:.1f} dB")
    assert score >= MATCH_DB, score


@pytest.fixture(scope="module")
def tiny():
    """(spandrel's net, our model, what was detected) for `TINY`, shared by the default-run tests."""
    net = _spandrel(TINY, seed=1)
    model, found = registry.build_and_assign(StateDict(state_of(net)))
    return net, model, found


def test_tiny_matches_spandrel_and_one_traced_function_serves_every_size(tiny):
    net, model, found = tiny
    assert found.name == "OmniSR" and isinstance(model, OmniSR) and found.params == TINY
    _check(model, net, TINY, VARIANTS[0][1])
    serve = tf.function(model.call, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    for size in ((17, 15), (5, 9)):  # spandrel refuses 5x9 (ESA's pool); we pad further
        x = photo_crop(*size, index=2)
        traced = serve(tf.constant(x)).numpy()
        assert traced.shape == (1, 2 * size[0], 2 * size[1], 3) and np.isfinite(traced).all()
    assert psnr(traced, model(x).numpy()) >= MATCH_DB
    assert serve.experimental_get_tracing_count() == 1
    clone = OmniSR.from_config(model.get_config())
    assert (clone.window_size, clone.pe, clone.up_scale) == (4, True, 2)


@pytest.mark.large
@pytest.mark.parametrize("params,size", VARIANTS[1:],
                         ids=[f"w{p['window_size']}-x{p['up_scale']}-pe{int(p['pe'])}-{p['num_in_ch']}ch"
                              for p, _ in VARIANTS[1:]])
def test_omnisr_matches_spandrel(params, size):
    net = _spandrel(params)
    model, found = registry.build_and_assign(StateDict(state_of(net)))
    assert found.name == "OmniSR" and isinstance(model, OmniSR)
    assert found.params == params
    _check(model, net, params, size)


def test_every_file_format_loads_and_matches_spandrel_and_the_keras_file_reloads(tmp_path):
    net = _spandrel(NO_PE, seed=2)
    files = checkpoint_files(state_of(net), tmp_path, stem="omnisr_x3")
    assert sorted(files) == sorted(FORMATS)
    x = photo_crop(15, 18, index=4)
    want = torch_forward(net, x)
    assert want.shape == (1, 45, 54, 3) and want.std() > 0.01
    for fmt, path in files.items():
        model, found = load_checkpoint(path)
        assert found.params == NO_PE, fmt
        assert psnr(model(x).numpy(), want) >= MATCH_DB, fmt
    model.save(tmp_path / "omnisr_x3.keras")
    np.testing.assert_array_equal(keras.models.load_model(tmp_path / "omnisr_x3.keras")(x).numpy(), model(x).numpy())


def test_the_published_x4_network_is_detected():
    assert registry.detect(StateDict(state_of(spandrel_arch("OmniSR").OmniSR(**PUBLISHED_X4)))).params == PUBLISHED_X4


def test_profiler_entries_are_ignored_and_a_wrong_or_missing_tensor_is_named(tiny):
    net, model, found = tiny
    good = state_of(net)
    state = StateDict({**good, "total_ops": np.zeros(1), "residual_layer.0.total_params": np.zeros(1)})
    assert registry.detect(state).params == TINY
    found.module.assign(model, state)
    state.finish()
    tensors = dict(good)
    tensors["residual_layer.0.residual_layer.0.layer.5.fn.temperature"] = np.ones((2, 1, 1), np.float32)
    with pytest.raises(CheckpointError, match=r"layer\.5\.fn\.temperature.*\(2, 1, 1\).*\(4, 1, 1\)"):
        found.module.assign(model, StateDict(tensors))
    tensors = dict(good)
    del tensors["residual_layer.0.esa.conv3.bias"]
    with pytest.raises(CheckpointError, match=r"residual_layer\.0\.esa\.conv3\.bias"):
        found.module.assign(model, StateDict(tensors))
    found.module.assign(model, StateDict(good))  # the shared model keeps spandrel's weights
