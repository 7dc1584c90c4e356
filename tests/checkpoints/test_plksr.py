"""PLKSR / RealPLKSR checkpoints against spandrel's PLKSR and RealPLKSR (tiny random-weight networks)."""

import numpy as np
import pytest
import tensorflow as tf

from sr_tf.checkpoints import CheckpointError, StateDict, registry
from sr_tf.models import PLKSR, RealPLKSR
from tests.checkpoints.oracle import (
    photo_crop,
    psnr,
    randomize,
    spandrel_arch,
    state_of,
    torch_forward,
)

# (spandrel class, its arguments, the params detection must give)
PLAIN = [
    dict(dim=8, n_blocks=2, upscaling_factor=2, ccm_type="CCM", kernel_size=7, split_ratio=0.25, use_ea=True),
    dict(dim=8, n_blocks=1, upscaling_factor=3, ccm_type="ICCM", kernel_size=5, split_ratio=0.5, use_ea=False),
    dict(dim=12, n_blocks=2, upscaling_factor=4, ccm_type="DCCM", kernel_size=9, split_ratio=0.25, use_ea=True),
    dict(dim=8, n_blocks=1, upscaling_factor=1, ccm_type="CCM", kernel_size=3, split_ratio=0.25, use_ea=True),
]
REAL = [
    dict(dim=8, n_blocks=2, upscaling_factor=2, kernel_size=7, split_ratio=0.25, use_ea=True, layer_norm=True),
    dict(dim=8, n_blocks=2, upscaling_factor=4, kernel_size=5, split_ratio=0.5, use_ea=False, layer_norm=False),
]


def _net(real, params, seed=0):
    arch = spandrel_arch("PLKSR")
    net = arch.RealPLKSR(**params) if real else arch.PLKSR(**params)
    return randomize(net, seed, scale=0.2)


def _check(real, params):
    net = _net(real, params)
    model, found = registry.build_and_assign(StateDict(state_of(net)))
    assert found.name == "PLKSR" and isinstance(model, RealPLKSR if real else PLKSR)
    extra = {"norm_groups": 4, "real": True} if real else {"real": False}
    assert found.params == {**params, **extra}
    x = photo_crop(13, 11)
    ours, theirs = model(x).numpy(), torch_forward(net, x)
    assert np.isfinite(theirs).all()
    score = psnr(ours, theirs)
    print(f"{'RealPLKSR' if real else 'PLKSR'} {params}: {score:.1f} dB")
    assert score >= 60, score
    return model


@pytest.mark.parametrize("params", PLAIN[:1] + [pytest.param(p, marks=pytest.mark.large) for p in PLAIN[1:]])
def test_plksr_matches_spandrel(params):
    _check(False, params)


@pytest.mark.parametrize("params", REAL[:1] + [pytest.param(p, marks=pytest.mark.large) for p in REAL[1:]])
def test_realplksr_matches_spandrel(params):
    _check(True, params)


def test_serialises_and_runs_under_tf_function():
    model = RealPLKSR(dim=8, n_blocks=1, upscaling_factor=2, kernel_size=5, layer_norm=False)
    clone = RealPLKSR.from_config(model.get_config())
    fn = tf.function(model, input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
    assert fn(photo_crop(7, 5)).shape == (1, 14, 10, 3) and clone.norm_groups == 4


def test_a_wrong_shape_or_missing_tensor_is_named():
    good = state_of(_net(False, PLAIN[0]))
    tensors = dict(good)
    tensors["feats.2.lk.conv.weight"] = np.zeros((2, 2, 5, 5), np.float32)
    with pytest.raises(CheckpointError, match=r"feats\.2\.lk\.conv\.weight.*\(2, 2, 5, 5\).*\(2, 2, 7, 7\)"):
        registry.build_and_assign(StateDict(tensors))
    tensors = dict(good)
    del tensors["feats.2.attn.f.0.bias"]
    with pytest.raises(CheckpointError, match=r"feats\.2\.attn\.f\.0\.bias"):
        registry.build_and_assign(StateDict(tensors))


def test_dysample_is_refused():
    net = spandrel_arch("PLKSR").RealPLKSR(dim=8, n_blocks=1, upscaling_factor=2, dysample=True)
    with pytest.raises(CheckpointError, match="DySample"):
        registry.detect(StateDict(state_of(net)))
