"""Real-CUGAN checkpoints (x2, x3, x4, pro, without SE) against spandrel's RealCUGAN.

Both pad the input by reflection (18 / 14 / 19 pixels plus up to a multiple of 2 / 4 / 2) and crop
the output from the top-left, so they agree to the last pixel; PyTorch's reflect padding needs
every side longer than the padding (H, W >= 20), ours repeats the reflection for smaller inputs.
"""

import numpy as np
import pytest

from sr_tf.checkpoints import CheckpointError, StateDict, registry
from sr_tf.models import UpCunet
from tests.checkpoints.oracle import (
    photo_crop,
    psnr,
    randomize,
    spandrel_arch,
    state_of,
    torch_forward,
)

CLASSES = {2: "UpCunet2x", 3: "UpCunet3x", 4: "UpCunet4x"}


def _spandrel(scale, pro=False, se=True, seed=0):
    arch = spandrel_arch("RealCUGAN")
    net = getattr(arch, CLASSES[scale])(in_channels=3, out_channels=3, pro=pro)
    if not se:  # the "nose" models: the same U-Nets without SE blocks (UNetConv.forward skips None)
        for module in net.modules():
            if hasattr(module, "seblock"):
                module.seblock = None
    return randomize(net, seed, scale=0.05)


def _check(net, tensors, expected, size=(27, 21)):
    model, found = registry.build_and_assign(StateDict(tensors))
    assert found.name == "RealCUGAN" and isinstance(model, UpCunet)
    assert found.params == {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 32, **expected}
    x = photo_crop(*size)
    ours, theirs = model(x).numpy(), torch_forward(net, x)
    assert ours.shape == theirs.shape
    assert psnr(ours, theirs) >= 60, psnr(ours, theirs)


VARIANTS = [(2, False, True), (4, True, True), (3, False, True), (2, True, True), (3, True, True),
            (4, False, True), (2, False, False)]


@pytest.mark.parametrize("scale,pro,se", VARIANTS[:2] + [pytest.param(*v, marks=pytest.mark.large) for v in VARIANTS[2:]])
def test_realcugan_matches_spandrel(scale, pro, se):
    net = _spandrel(scale, pro, se)
    _check(net, state_of(net), {"scale": scale, "se": se, "pro": pro})


def _state():
    return state_of(_spandrel(2))


def test_a_missing_tensor_is_named():
    tensors = _state()
    del tensors["unet2.conv3.seblock.conv2.bias"]
    with pytest.raises(CheckpointError, match=r"unet2\.conv3\.seblock\.conv2\.bias"):
        registry.build_and_assign(StateDict(tensors))


def test_a_wrong_shape_is_named():
    tensors = _state()
    tensors["unet1.conv2_up.weight"] = np.zeros((64, 32, 2, 2), np.float32)
    with pytest.raises(CheckpointError, match=r"unet1\.conv2_up\.weight.*\(64, 32, 2, 2\).*\(64, 64, 2, 2\)"):
        registry.build_and_assign(StateDict(tensors))


def test_an_extra_tensor_fails():
    tensors = _state()
    tensors["conv_final.bias"] = np.zeros(12, np.float32)
    with pytest.raises(CheckpointError, match=r"conv_final\.bias"):
        registry.build_and_assign(StateDict(tensors))
