"""SAFMN / SAFMN-BCIE checkpoints against spandrel's SAFMN and SAFMNBCIE (tiny random-weight networks)."""

import numpy as np
import pytest
import tensorflow as tf

from sr_tf.checkpoints import CheckpointError, StateDict, registry
from sr_tf.models import SAFMN, SAFMNBCIE
from tests.checkpoints.oracle import (
    photo_crop,
    psnr,
    randomize,
    spandrel_arch,
    state_of,
    torch_forward,
)

PLAIN = [
    dict(dim=8, n_blocks=2, ffn_scale=2.0, upscaling_factor=2),
    dict(dim=12, n_blocks=1, ffn_scale=1.5, upscaling_factor=4),
    dict(dim=8, n_blocks=1, ffn_scale=2.0, upscaling_factor=3),
]
BCIE = [
    dict(dim=8, n_blocks=2, num_layers=1, ffn_scale=2.0, upscaling_factor=2),
    dict(dim=8, n_blocks=1, num_layers=2, ffn_scale=1.5, upscaling_factor=3),
]


def _net(bcie, params, seed=0):
    net = (spandrel_arch("SAFMNBCIE").SAFMNBCIE if bcie else spandrel_arch("SAFMN").SAFMN)(**params)
    return randomize(net, seed, scale=0.2)


def _check(bcie, params, height, width):
    net = _net(bcie, params)
    model, found = registry.build_and_assign(StateDict(state_of(net)))
    assert found.name == "SAFMN" and isinstance(model, SAFMNBCIE if bcie else SAFMN)
    assert found.params == {**params, "bcie": bcie}
    x = photo_crop(height, width)
    ours, theirs = model(x).numpy(), torch_forward(net, x)
    assert np.isfinite(theirs).all()
    score = psnr(ours, theirs)
    print(f"{'SAFMNBCIE' if bcie else 'SAFMN'} {params} {height}x{width}: {score:.1f} dB")
    # float32 agreement is ~140 dB; pooling every bin by its first row/column alone still scored 66 dB.
    assert score >= 100, score
    return model


# 13x11 and 23x19 are no multiples of 8: the adaptive max pools have unequal bins there.
@pytest.mark.parametrize("params,size", [(PLAIN[0], (13, 11))] + [
    pytest.param(p, s, marks=pytest.mark.large) for p, s in ((PLAIN[1], (23, 19)), (PLAIN[2], (9, 17)))])
def test_safmn_matches_spandrel(params, size):
    _check(False, params, *size)


# PyTorch needs multiples of the factor, and a body of at least 8x8 (spandrel pads to 16 outside the network).
@pytest.mark.parametrize("params,size", [(BCIE[0], (34, 18))] + [
    pytest.param(BCIE[1], (27, 30), marks=pytest.mark.large)])
def test_safmn_bcie_matches_spandrel(params, size):
    _check(True, params, *size)


def test_bcie_pads_any_size_and_runs_under_tf_function():
    net = _net(True, BCIE[0])
    model, _ = registry.build_and_assign(StateDict(state_of(net)))
    fn = tf.function(model, input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
    for h, w in ((13, 11), (9, 16)):
        x = photo_crop(h, w)
        eager, graph = model(x).numpy(), fn(x).numpy()
        assert eager.shape == (1, h, w, 3)
        np.testing.assert_allclose(graph, eager, rtol=2e-6, atol=1e-5)  # float32 rounding (grappler may fuse in graph)
    clone = SAFMNBCIE.from_config(model.get_config())
    assert clone.num_layers == 1


def test_a_wrong_shape_or_missing_tensor_is_named():
    good = state_of(_net(False, PLAIN[0]))
    tensors = dict(good)
    tensors["feats.1.safm.mfr.2.weight"] = np.zeros((2, 2, 3, 3), np.float32)
    with pytest.raises(CheckpointError, match=r"feats\.1\.safm\.mfr\.2\.weight.*\(2, 2, 3, 3\).*\(2, 1, 3, 3\)"):
        registry.build_and_assign(StateDict(tensors))
    tensors = dict(good)
    del tensors["feats.1.norm2.bias"]
    with pytest.raises(CheckpointError, match=r"feats\.1\.norm2\.bias"):
        registry.build_and_assign(StateDict(tensors))
