"""Real-ESRGAN's SRVGGNetCompact ("Compact": realesr-animevideov3, realesr-general-x4v3, many 1x/2x
community models) into `sr_tf.models.SRVGGNetCompact`.

Layout (BasicSR's `body` ModuleList): `body.{2i}` are the 3x3 convs (`num_conv + 2` of them, the
last one feeding the pixel shuffle), `body.{2i+1}` the PReLUs (`[num_feat]` slopes) between them.
As in spandrel's detection: `num_feat` and the input channels come from `body.0.weight`,
`num_conv = (last index - 2) / 2`, and `upscale**2 * out_ch` = the last conv's outputs, with
`out_ch` the input's channels if that fits, else 3, 4 or 1. ReLU / LeakyReLU variants have no
tensors between the convs, so they cannot be told apart; like spandrel, only PReLU files are
recognised.
"""

from __future__ import annotations

import re

import numpy as np

from sr_tf.checkpoints.state import CheckpointError, StateDict
from sr_tf.checkpoints.weights import pixel_shuffle_scale, set_conv, set_prelu
from sr_tf.models import SRVGGNetCompact, torch_to_tf_shuffle_permutation
from sr_tf.models.srvgg import SCALES

NAME = "Compact"
_KEY = re.compile(r"body\.(\d+)\.(weight|bias)")


def detect(state: StateDict) -> dict | None:
    if "body.0.weight" not in state or "body.1.weight" not in state:
        return None
    matches = [_KEY.fullmatch(k) for k in state.keys_with("body.")]
    if not all(matches) or len(state.shape("body.0.weight")) != 4 or len(state.shape("body.1.weight")) != 1:
        return None
    last = max(int(m.group(1)) for m in matches)
    if last % 2 or last < 2:
        return None
    num_feat, in_ch = state.shape("body.0.weight")[:2]
    if f"body.{last}.weight" not in state or len(state.shape(f"body.{last}.weight")) != 4:
        return None
    found = pixel_shuffle_scale(state.shape(f"body.{last}.weight")[0], in_ch)
    if found is None or found[0] not in SCALES:
        raise CheckpointError(
            f"Compact: the last conv body.{last} has {state.shape(f'body.{last}.weight')[0]} outputs, "
            f"which is no supported scale {SCALES} times 1, 3, 4 or {in_ch} channels"
        )
    scale, out_ch = found
    return {"num_in_ch": int(in_ch), "num_out_ch": int(out_ch), "num_feat": int(num_feat),
            "num_conv": (last - 2) // 2, "upscale": int(scale), "act_type": "prelu"}


def build(params: dict) -> SRVGGNetCompact:
    model = SRVGGNetCompact(**params)
    model(np.zeros((1, 4, 4, model.num_in_ch), np.float32))
    return model


def assign(model: SRVGGNetCompact, state: StateDict) -> None:
    for i, (conv, act) in enumerate(zip(model.convs, model.acts, strict=True)):
        set_conv(conv, state, f"body.{2 * i}")
        set_prelu(act, state, f"body.{2 * i + 1}.weight")
    perm = torch_to_tf_shuffle_permutation(model.num_out_ch, model.upscale)
    set_conv(model.conv_last, state, f"body.{2 * len(model.convs)}", out_perm=perm)
