"""SPAN checkpoints against spandrel's SPAN (both the training form of Conv3XC and eval_conv-only files)."""

import numpy as np
import pytest

from sr_tf.checkpoints import CheckpointError, StateDict, registry
from sr_tf.models import SPAN
from sr_tf.models.span import DIV2K_RGB_MEAN
from tests.checkpoints.oracle import (
    photo_crop,
    psnr,
    randomize,
    spandrel_arch,
    state_of,
    torch_forward,
)

# (spandrel arguments, the img_range and rgb_mean detection must give)
NORM = (255.0, DIV2K_RGB_MEAN)
VARIANTS = [
    (dict(num_in_ch=3, num_out_ch=3, feature_channels=4, upscale=4, norm=True), NORM),
    (dict(num_in_ch=3, num_out_ch=3, feature_channels=6, upscale=2, norm=False), (1.0, (0.0,) * 3)),
    (dict(num_in_ch=1, num_out_ch=1, feature_channels=4, upscale=3, norm=False), (1.0, (0.0,))),
    (dict(num_in_ch=3, num_out_ch=3, feature_channels=5, upscale=1, norm=True), NORM),
    (dict(num_in_ch=3, num_out_ch=3, feature_channels=4, upscale=8, norm=True), NORM),
]


def _spandrel(params, seed=0):
    # randomize's 0.2 noise through 22 fused convs overflows float32; smaller weights keep it finite.
    return randomize(spandrel_arch("SPAN").SPAN(**params), seed, scale=0.1)


def _check(net, tensors, params, expected):
    model, found = registry.build_and_assign(StateDict(tensors))
    assert found.name == "SPAN" and isinstance(model, SPAN)
    img_range, mean = expected
    assert found.params == {"num_in_ch": params["num_in_ch"], "num_out_ch": params["num_out_ch"],
                            "feature_channels": params["feature_channels"], "upscale": params["upscale"],
                            "img_range": img_range, "rgb_mean": mean}
    x = photo_crop(23, 19, channels=params["num_in_ch"])
    ours, theirs = model(x).numpy(), torch_forward(net, x)
    assert np.isfinite(theirs).all()
    assert psnr(ours, theirs) >= 60, psnr(ours, theirs)


@pytest.mark.parametrize(
    "params,expected", VARIANTS[:2] + [pytest.param(*v, marks=pytest.mark.large) for v in VARIANTS[2:]]
)
def test_span_matches_spandrel(params, expected):
    net = _spandrel(params)
    _check(net, state_of(net), params, expected)


def test_a_file_with_only_the_fused_convs_loads():
    params, expected = VARIANTS[0]
    net = _spandrel(params)
    torch_forward(net, photo_crop(4, 4))  # spandrel refreshes eval_conv from the training form here
    tensors = {k: v for k, v in state_of(net).items() if ".sk." not in k and ".conv." not in k}
    _check(net, tensors, params, expected)


def _state():
    return state_of(_spandrel(VARIANTS[1][0]))


def test_a_missing_tensor_is_named():
    tensors = _state()
    del tensors["block_3.c2_r.conv.1.bias"]
    with pytest.raises(CheckpointError, match=r"block_3\.c2_r\.conv\.1\.bias"):
        registry.build_and_assign(StateDict(tensors))


def test_a_wrong_shape_is_named():
    tensors = _state()
    tensors["conv_cat.weight"] = np.zeros((6, 20, 1, 1), np.float32)
    with pytest.raises(CheckpointError, match=r"conv_cat\.weight.*\(6, 20, 1, 1\).*\(6, 24, 1, 1\)"):
        registry.build_and_assign(StateDict(tensors))


def test_an_extra_tensor_fails():
    tensors = _state()
    tensors["block_7.c1_r.sk.weight"] = np.zeros((6, 6, 1, 1), np.float32)
    with pytest.raises(CheckpointError, match=r"block_7\.c1_r\.sk\.weight"):
        registry.build_and_assign(StateDict(tensors))
