"""Real-ESRGAN Compact (SRVGGNetCompact) checkpoints against spandrel's Compact."""

import numpy as np
import pytest

from sr_tf.checkpoints import CheckpointError, StateDict, registry
from sr_tf.models import SRVGGNetCompact
from tests.checkpoints.oracle import (
    photo_crop,
    psnr,
    randomize,
    spandrel_arch,
    state_of,
    torch_forward,
)

VARIANTS = [
    dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=4),
    dict(num_in_ch=3, num_out_ch=3, num_feat=6, num_conv=0, upscale=2),
    dict(num_in_ch=3, num_out_ch=3, num_feat=4, num_conv=1, upscale=1),
    dict(num_in_ch=1, num_out_ch=1, num_feat=4, num_conv=3, upscale=3),
    dict(num_in_ch=3, num_out_ch=3, num_feat=4, num_conv=1, upscale=8),
]


def _spandrel(params, seed=0):
    return randomize(spandrel_arch("Compact").Compact(**params), seed)


@pytest.mark.parametrize("params", VARIANTS[:2] + [pytest.param(v, marks=pytest.mark.large) for v in VARIANTS[2:]])
def test_compact_matches_spandrel(params):
    net = _spandrel(params)
    state = StateDict(state_of(net))
    model, found = registry.build_and_assign(state)
    assert found.name == "Compact" and isinstance(model, SRVGGNetCompact)
    assert found.params == {**params, "act_type": "prelu"}
    x = photo_crop(23, 19, channels=params["num_in_ch"])
    ours = model(x).numpy()
    theirs = torch_forward(net, x)
    assert psnr(ours, theirs) >= 60, psnr(ours, theirs)


def _state(**params):
    return state_of(_spandrel({**VARIANTS[1], **params}))


def test_a_missing_tensor_is_named():
    tensors = _state(num_conv=1)
    del tensors["body.3.weight"]
    with pytest.raises(CheckpointError, match=r"body\.3\.weight"):
        registry.build_and_assign(StateDict(tensors))


def test_a_wrong_shape_is_named():
    tensors = _state()
    tensors["body.1.weight"] = np.zeros(5, np.float32)
    with pytest.raises(CheckpointError, match=r"body\.1\.weight.*\(5,\).*\(6,\)"):
        registry.build_and_assign(StateDict(tensors))


def test_an_extra_tensor_fails():
    tensors = _state()
    tensors["upsampler.weight"] = np.zeros((6, 6, 3, 3), np.float32)
    with pytest.raises(CheckpointError, match=r"did not use 1 tensors.*upsampler\.weight"):
        registry.build_and_assign(StateDict(tensors))
