"""SAFMN and SAFMN-BCIE checkpoints (the authors' / spandrel's PyTorch layout) into `sr_tf.models.SAFMN` / `SAFMNBCIE`.

Detection (spandrel's facts): SAFMN's `to_feat` conv gives `dim`, the `feats.*` blocks `n_blocks`,
`feats.0.ccm.ccm.0`'s outputs over dim `ffn_scale`, and `to_img.0`'s `3 * s**2` outputs the scale.
SAFMN-BCIE (`to_feat.1` after a pixel unshuffle, `feats.<g>.layers.<i>` groups closed by `feats.<g>.conv`)
reads `dim` and the unshuffle factor from `to_feat.1` (`3 * s**2` inputs), `n_blocks` and `num_layers`
from the key counts, `ffn_scale` from the first block's CCM.
"""

from __future__ import annotations

import math

import numpy as np

from sr_tf.checkpoints.state import CheckpointError, StateDict
from sr_tf.checkpoints.swinir import seq_len
from sr_tf.checkpoints.weights import set_conv, set_depthwise_conv, set_norm
from sr_tf.models import SAFMN, SAFMNBCIE, torch_to_tf_shuffle_permutation
from sr_tf.models.safmn import N_LEVELS, SCALES

NAME = "SAFMN"


def _factor(channels: int, key: str) -> int:
    s = math.isqrt(channels // 3)
    if s * s * 3 != channels or s not in SCALES:
        raise CheckpointError(f"SAFMN: tensor {key!r} has {channels} channels, not 3 * s**2 for an s in {SCALES}")
    return s


def detect(state: StateDict) -> dict | None:
    if "to_feat.weight" in state and "feats.0.safm.aggr.weight" in state and "to_img.0.weight" in state:
        dim = state.shape("to_feat.weight")[0]
        return {"dim": dim, "n_blocks": seq_len(state, "feats"),
                "ffn_scale": state.shape("feats.0.ccm.ccm.0.weight")[0] / dim,
                "upscaling_factor": _factor(state.shape("to_img.0.weight")[0], "to_img.0.weight"), "bcie": False}
    if "to_feat.1.weight" in state and "feats.0.layers.0.safm.aggr.weight" in state and "to_img.2.weight" in state:
        dim, cin = state.shape("to_feat.1.weight")[:2]
        return {"dim": dim, "n_blocks": seq_len(state, "feats"), "num_layers": seq_len(state, "feats.0.layers"),
                "ffn_scale": state.shape("feats.0.layers.0.ccm.ccm.0.weight")[0] / dim,
                "upscaling_factor": _factor(cin, "to_feat.1.weight"), "bcie": True}
    return None


def describe(params: dict) -> dict:
    return {"scale": 1 if params["bcie"] else params["upscaling_factor"], "in_channels": 3, "out_channels": 3}


def build(params: dict):
    kwargs = {k: v for k, v in params.items() if k != "bcie"}
    model = SAFMNBCIE(**kwargs) if params["bcie"] else SAFMN(**kwargs)
    model(np.zeros((1, 8, 8, 3), np.float32))
    return model


def _set_block(block, state: StateDict, p: str) -> None:
    set_norm(block.norm1, state, f"{p}.norm1")
    set_norm(block.norm2, state, f"{p}.norm2")
    for i in range(N_LEVELS):
        set_depthwise_conv(block.safm.mfr[i], state, f"{p}.safm.mfr.{i}")
    set_conv(block.safm.aggr, state, f"{p}.safm.aggr")
    set_conv(block.ccm_0, state, f"{p}.ccm.ccm.0")
    set_conv(block.ccm_2, state, f"{p}.ccm.ccm.2")


def assign(model, state: StateDict) -> None:
    s = model.upscaling_factor
    if isinstance(model, SAFMNBCIE):
        set_conv(model.to_feat, state, "to_feat.1", in_perm=torch_to_tf_shuffle_permutation(3, s))
        for g, (layers, conv) in enumerate(zip(model.groups, model.group_convs, strict=True)):
            for i, block in enumerate(layers):
                _set_block(block, state, f"feats.{g}.layers.{i}")
            set_conv(conv, state, f"feats.{g}.conv")
        set_conv(model.to_img_0, state, "to_img.0", out_perm=torch_to_tf_shuffle_permutation(model.dim, s))
        set_conv(model.to_img_2, state, "to_img.2")
        return
    set_conv(model.to_feat, state, "to_feat")
    for i, block in enumerate(model.blocks):
        _set_block(block, state, f"feats.{i}")
    set_conv(model.to_img, state, "to_img.0", out_perm=torch_to_tf_shuffle_permutation(3, s))
