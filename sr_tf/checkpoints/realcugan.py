"""Real-CUGAN PyTorch checkpoints (`up2x/up3x/up4x-*.pth`, and the `pro-*` ones) into `UpCunet`.

Layout (bilibili's `upcunet_v3.py`, as spandrel reads it): `unet1.*` and `unet2.*` U-Nets whose
`UNetConv` blocks hold `conv.0` / `conv.2` (3x3 valid convs) and, in the SE models,
`seblock.conv1` / `seblock.conv2` (1x1 convs on the pooled features = dense layers); the
transposed convs are `conv2_up`, `conv3_up`, `conv4_up` and UNet1's `conv_bottom`; x4 adds
`conv_final` before a x2 pixel shuffle.

Detection (spandrel's facts): `conv_final` means x4, else UNet1's `conv_bottom` kernel of 5 means
x3 and of 4 x2; a `pro` buffer means a pro model; the channels come from `unet1.conv1.conv.0` and
the last conv. We also read `num_feat` from `unet1.conv1.conv.0` (spandrel fixes 32) and accept
files without SE blocks. `UpCunet2x_fast` (a x4 layout on a 2x-unshuffled input) is recognised
and refused.
"""

from __future__ import annotations

import numpy as np

from sr_tf.checkpoints.state import CheckpointError, StateDict
from sr_tf.checkpoints.weights import set_conv, set_conv_transpose, set_dense_from_conv1x1
from sr_tf.models import UpCunet, torch_to_tf_shuffle_permutation
from sr_tf.models.cunet import SEBlock, UNetConv

NAME = "RealCUGAN"
_REQUIRED = ("unet1.conv1.conv.0.weight", "unet1.conv1_down.weight", "unet1.conv2_up.weight",
             "unet1.conv_bottom.weight", "unet2.conv1.conv.0.weight", "unet2.conv3_up.weight",
             "unet2.conv4_up.weight", "unet2.conv5.weight", "unet2.conv_bottom.weight")
_UNET1 = ("conv1", "conv1_down", "conv2", "conv2_up", "conv3", "conv_bottom")
_UNET2 = ("conv1", "conv1_down", "conv2", "conv2_down", "conv3", "conv3_up", "conv4", "conv4_up", "conv5",
          "conv_bottom")


def detect(state: StateDict) -> dict | None:
    if not all(k in state for k in _REQUIRED):
        return None
    num_feat, in_ch = state.shape("unet1.conv1.conv.0.weight")[:2]
    se = "unet1.conv2.seblock.conv1.weight" in state
    if "conv_final.weight" in state:
        out_ch = state.shape("conv_final.weight")[0] // 4
        if out_ch * 4 == in_ch:
            raise CheckpointError("Real-CUGAN UpCunet2x_fast checkpoints (a 2x-unshuffled input) are not supported")
        scale = 4
    else:
        kernel = state.shape("unet1.conv_bottom.weight")[2]
        if kernel not in (4, 5):
            raise CheckpointError(f"Real-CUGAN: unet1.conv_bottom has a {kernel}x{kernel} kernel; x2 has 4, x3 has 5")
        scale = 2 if kernel == 4 else 3
        out_ch = state.shape("unet2.conv_bottom.weight")[0]
    return {"scale": scale, "se": se, "num_in_ch": int(in_ch), "num_out_ch": int(out_ch),
            "num_feat": int(num_feat), "pro": "pro" in state}


def build(params: dict) -> UpCunet:
    model = UpCunet(**params)
    model(np.zeros((1, 4, 4, model.num_in_ch), np.float32))
    return model


def _set_unet(unet, state: StateDict, prefix: str, names: tuple[str, ...]) -> None:
    for name in names:
        layer, key = getattr(unet, name), f"{prefix}.{name}"
        if isinstance(layer, UNetConv):
            set_conv(layer.conv_a, state, f"{key}.conv.0")
            set_conv(layer.conv_b, state, f"{key}.conv.2")
            if isinstance(layer.seblock, SEBlock):
                set_dense_from_conv1x1(layer.seblock.squeeze, state, f"{key}.seblock.conv1")
                set_dense_from_conv1x1(layer.seblock.excite, state, f"{key}.seblock.conv2")
        elif name.endswith("_up") or (prefix == "unet1" and name == "conv_bottom"):
            set_conv_transpose(layer, state, key)
        else:
            set_conv(layer, state, key)


def assign(model: UpCunet, state: StateDict) -> None:
    _set_unet(model.unet1, state, "unet1", _UNET1)
    _set_unet(model.unet2, state, "unet2", _UNET2)
    if model.scale == 4:
        perm = torch_to_tf_shuffle_permutation(model.num_out_ch, 2)
        set_conv(model.conv_final, state, "conv_final", out_perm=perm)
    state.skip("pro")  # a flag, read by detect
