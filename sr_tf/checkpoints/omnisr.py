"""OmniSR checkpoints (the authors' / spandrel's PyTorch layout) into `sr_tf.models.OmniSR`.

Detection (spandrel's facts): an OmniSR state dict has `input.weight`, `up.0.weight` and the first
block's MBConv `residual_layer.0.residual_layer.0.layer.0.fn.0.weight`. `input` gives `num_feat` (outputs)
and `num_in_ch` (inputs), and `bias` is whether `input.bias` is there; `up.0`'s outputs are
`num_out_ch * up_scale**2` (read as spandrel does: the output channels are the input's if possible,
else 3, 4 or 1). `res_num` counts the `residual_layer.<g>` groups, `block_num` the group's
`residual_layer.0.residual_layer.<b>` entries less one (the last is the group's 1x1 conv). With the
first block's `layer.2.fn.rel_pos_bias.weight` (`(2 * window_size - 1)**2` rows) `pe` is on and says the
window size; without it `pe` is off and the window is not stored: spandrel then assumes 8, and so do we.
The profiler's `total_ops` / `total_params` entries some files carry are ignored, as spandrel does.
"""

from __future__ import annotations

import numpy as np

from sr_tf.checkpoints.state import CheckpointError, StateDict
from sr_tf.checkpoints.swinir import seq_len, window_from_table
from sr_tf.checkpoints.weights import (
    pixel_shuffle_scale,
    set_conv,
    set_dense,
    set_depthwise_conv,
    set_norm,
)
from sr_tf.models import OmniSR, torch_to_tf_shuffle_permutation

NAME = "OmniSR"
UNSTORED_WINDOW_SIZE = 8  # spandrel's assumption for files without the position bias
_REQUIRED = ("residual_layer.0.residual_layer.0.layer.0.fn.0.weight", "input.weight", "up.0.weight")
_PE_KEY = "residual_layer.0.residual_layer.0.layer.2.fn.rel_pos_bias.weight"
# `layer.<i>` of an OSA block: the gated feed-forwards and the two attentions of each kind
_FFNS = (4, 6, 10, 12)
_SPATIAL = {"block_attn": 2, "grid_attn": 8}
_CHANNEL = {"block_channel_attn": 5, "grid_channel_attn": 11}


def detect(state: StateDict) -> dict | None:
    if not all(k in state for k in _REQUIRED):
        return None
    num_feat, num_in_ch = state.shape("input.weight")[:2]
    found = pixel_shuffle_scale(state.shape("up.0.weight")[0], num_in_ch)
    if found is None:
        raise CheckpointError(f"OmniSR: 'up.0.weight' has {state.shape('up.0.weight')[0]} outputs, which is no "
                              f"out_channels * scale**2 for out_channels in ({num_in_ch}, 3, 4, 1)")
    up_scale, num_out_ch = found
    pe = _PE_KEY in state
    return {"num_in_ch": num_in_ch, "num_out_ch": num_out_ch, "num_feat": num_feat,
            "block_num": seq_len(state, "residual_layer.0.residual_layer") - 1, "pe": pe,
            "window_size": window_from_table(state.shape(_PE_KEY)[0], _PE_KEY) if pe else UNSTORED_WINDOW_SIZE,
            "res_num": seq_len(state, "residual_layer"), "up_scale": up_scale, "bias": "input.bias" in state}


def build(params: dict):
    model = OmniSR(**params)
    model(np.zeros((1, 4, 4, params["num_in_ch"]), np.float32))
    return model


def _set_block(block, state: StateDict, p: str) -> None:
    mb = block.mbconv
    set_conv(mb.conv_in, state, f"{p}.layer.0.fn.0")
    set_depthwise_conv(mb.dwconv, state, f"{p}.layer.0.fn.2")
    set_dense(mb.se_reduce, state, f"{p}.layer.0.fn.4.gate.1")
    set_dense(mb.se_expand, state, f"{p}.layer.0.fn.4.gate.3")
    set_conv(mb.conv_out, state, f"{p}.layer.0.fn.5")
    for name, i in _SPATIAL.items():
        attn, q = getattr(block, name), f"{p}.layer.{i}"
        set_norm(attn.norm, state, f"{q}.norm")
        set_dense(attn.to_qkv, state, f"{q}.fn.to_qkv")
        set_dense(attn.to_out, state, f"{q}.fn.to_out.0")
        if attn.pe:
            attn.rel_pos_bias.assign(state.take(f"{q}.fn.rel_pos_bias.weight", tuple(attn.rel_pos_bias.shape)))
    for name, i in _CHANNEL.items():
        attn, q = getattr(block, name), f"{p}.layer.{i}"
        set_norm(attn.norm, state, f"{q}.norm")
        attn.temperature.assign(state.take(f"{q}.fn.temperature", tuple(attn.temperature.shape)))
        set_conv(attn.qkv, state, f"{q}.fn.qkv")
        set_depthwise_conv(attn.qkv_dwconv, state, f"{q}.fn.qkv_dwconv")
        set_conv(attn.project_out, state, f"{q}.fn.project_out")
    for ffn, i in zip(block.ffns, _FFNS, strict=True):
        q = f"{p}.layer.{i}"
        set_norm(ffn.norm, state, f"{q}.norm")
        set_conv(ffn.project_in, state, f"{q}.fn.project_in")
        set_depthwise_conv(ffn.dwconv, state, f"{q}.fn.dwconv")
        set_conv(ffn.project_out, state, f"{q}.fn.project_out")


def assign(model, state: StateDict) -> None:
    state.skip(*(k for k in state if k.endswith(("total_ops", "total_params"))))
    set_conv(model.input_conv, state, "input")
    for g, group in enumerate(model.groups):
        p = f"residual_layer.{g}"
        for b, block in enumerate(group.blocks):
            _set_block(block, state, f"{p}.residual_layer.{b}")
        set_conv(group.conv, state, f"{p}.residual_layer.{group.block_num}")
        for name in ("conv1", "conv_f", "conv2", "conv3", "conv4"):
            set_conv(getattr(group.esa, name), state, f"{p}.esa.{name}")
    set_conv(model.output_conv, state, "output")
    set_conv(model.up, state, "up.0", out_perm=torch_to_tf_shuffle_permutation(model.num_out_ch, model.up_scale))
