"""DAT checkpoints (the authors' / spandrel's PyTorch layout) into `sr_tf.models.DAT`.

Detection (spandrel's facts, our code): `in_chans` and `embed_dim` from `conv_first`; the groups
and their depths from the `layers.{i}.blocks.{j}` indices; a group's heads from a channel block's
`temperature` (`[heads, 1, 1]`), or for a one-block group from the position-bias MLP's last
linear (`heads / 2` outputs per window half); `split_size` from the last row of the stored
`rpe_biases` table (`(h - 1, w - 1)` of the first window half); `expansion_factor` from `ffn.fc1`;
`qkv_bias` from whether `attn.qkv.bias` is there; "3conv" when `conv_after_body.4` is there;
"pixelshuffle" when `conv_last` is (`num_feat` from `conv_before_upsample.0`, the scale from the
`upsample.{0,2,..}` stages: one of 9x width is x3, n of 4x width are x2**n), else
"pixelshuffledirect" (`in_chans * scale**2` outputs of `upsample.0`). `img_range` is not stored:
the published networks use 1, as spandrel assumes.

Buffers the model recomputes (`rpe_biases`, `relative_position_index`, the shifted blocks'
`attn_mask_0/1` for the training size, BatchNorm's `num_batches_tracked`) are marked used.
"""

from __future__ import annotations

import re

import numpy as np

from sr_tf.checkpoints.state import CheckpointError, StateDict
from sr_tf.checkpoints.weights import (
    set_batch_norm,
    set_conv,
    set_dense,
    set_depthwise_conv,
    set_norm,
)
from sr_tf.models import DAT, torch_to_tf_shuffle_permutation
from sr_tf.models.dat import SCALES

NAME = "DAT"
PUBLISHED_IMG_RANGE = 1.0
_REQUIRED = ("conv_first.weight", "before_RG.1.weight", "norm.weight", "layers.0.blocks.0.ffn.sg.conv.weight",
             "layers.0.blocks.0.attn.attns.0.pos.pos_proj.weight", "layers.0.blocks.0.attn.dwconv.0.weight")


def _indices(state: StateDict, pattern: str) -> list[int]:
    found = {int(m.group(1)) for k in state if (m := re.match(pattern, k))}
    return sorted(found)


def _count(state: StateDict, pattern: str, what: str) -> int:
    found = _indices(state, pattern)
    if found != list(range(len(found))):
        raise CheckpointError(f"DAT: the {what} indices are {found}, not 0..{len(found) - 1}")
    return len(found)


def _heads(state: StateDict, group: int, depth: int) -> int:
    if depth >= 2:
        return int(state.shape(f"layers.{group}.blocks.1.attn.temperature")[0])
    return 2 * int(state.shape(f"layers.{group}.blocks.0.attn.attns.0.pos.pos3.2.weight")[0])


def _split_size(state: StateDict) -> tuple[int, int]:
    key = "layers.0.blocks.0.attn.attns.0.rpe_biases"
    if key not in state:
        raise CheckpointError(f"DAT: the checkpoint has no tensor {key!r}, which says the window size")
    last = np.asarray(state[key])[-1]
    return int(round(float(last[0]))) + 1, int(round(float(last[1]))) + 1


def _upsampler(state: StateDict, in_chans: int) -> dict:
    if "conv_last.weight" in state:
        num_feat = int(state.shape("conv_before_upsample.0.weight")[0])
        stages = _indices(state, r"upsample\.(\d+)\.weight$")
        widths = [state.shape(f"upsample.{i}.weight")[0] for i in stages]
        if stages == [0] and widths == [9 * num_feat]:
            scale = 3
        elif stages == list(range(0, 2 * len(stages), 2)) and widths and all(w == 4 * num_feat for w in widths):
            scale = 2 ** len(stages)
        else:
            raise CheckpointError(f"DAT: the upsampler convs {stages} have {widths} outputs for num_feat={num_feat}, "
                                  f"which is no supported scale {SCALES['pixelshuffle']}")
        return {"upscale": scale, "upsampler": "pixelshuffle", "num_feat": num_feat}
    if "upsample.0.weight" not in state:
        raise CheckpointError("DAT: the checkpoint has neither 'conv_last.weight' nor 'upsample.0.weight'")
    channels = int(state.shape("upsample.0.weight")[0])
    scale = int(round(np.sqrt(channels / in_chans)))
    if scale * scale * in_chans != channels or scale not in SCALES["pixelshuffledirect"]:
        raise CheckpointError(f"DAT: upsample.0 has {channels} outputs, which is no supported scale "
                              f"{SCALES['pixelshuffledirect']} squared times in_chans={in_chans}")
    return {"upscale": scale, "upsampler": "pixelshuffledirect"}


def detect(state: StateDict) -> dict | None:
    if not all(k in state for k in _REQUIRED):
        return None
    embed_dim, in_chans = (int(d) for d in state.shape("conv_first.weight")[:2])
    groups = _count(state, r"layers\.(\d+)\.", "residual group")
    depth = tuple(_count(state, rf"layers\.{i}\.blocks\.(\d+)\.", f"layers.{i} block") for i in range(groups))
    hidden = int(state.shape("layers.0.blocks.0.ffn.fc1.weight")[0])
    expansion = hidden / embed_dim
    if int(embed_dim * expansion) != hidden:
        raise CheckpointError(f"DAT: ffn.fc1 has {hidden} outputs, which no expansion_factor of {embed_dim} gives")
    if "conv_after_body.weight" in state:
        resi = "1conv"
    elif "conv_after_body.4.weight" in state:
        resi = "3conv"
    else:
        raise CheckpointError("DAT: the checkpoint has neither 'conv_after_body.weight' nor 'conv_after_body.4.weight'")
    return {
        "in_chans": in_chans,
        "embed_dim": embed_dim,
        "depth": depth,
        "num_heads": tuple(_heads(state, i, n) for i, n in enumerate(depth)),
        "split_size": _split_size(state),
        "expansion_factor": float(expansion),
        "qkv_bias": "layers.0.blocks.0.attn.qkv.bias" in state,
        "img_range": PUBLISHED_IMG_RANGE,
        "resi_connection": resi,
        **_upsampler(state, in_chans),
    }


def describe(params: dict) -> dict:
    return {"scale": params["upscale"], "in_channels": params["in_chans"], "out_channels": params["in_chans"]}


def build(params: dict) -> DAT:
    model = DAT(**params)
    model(np.zeros((1, 4, 4, model.in_chans), np.float32))
    return model


def _set_resi(convs, state: StateDict, prefix: str) -> None:
    if len(convs) == 1:
        set_conv(convs[0], state, prefix)
    else:
        for conv, i in zip(convs, (0, 2, 4), strict=True):
            set_conv(conv, state, f"{prefix}.{i}")


def _set_attention(attn, state: StateDict, p: str) -> None:
    set_dense(attn.qkv, state, f"{p}.qkv")
    set_dense(attn.proj, state, f"{p}.proj")
    set_depthwise_conv(attn.dwconv, state, f"{p}.dwconv.0")
    set_batch_norm(attn.dwconv_bn, state, f"{p}.dwconv.1")
    set_conv(attn.channel_1, state, f"{p}.channel_interaction.1")
    set_batch_norm(attn.channel_bn, state, f"{p}.channel_interaction.2")
    set_conv(attn.channel_2, state, f"{p}.channel_interaction.4")
    set_conv(attn.spatial_1, state, f"{p}.spatial_interaction.0")
    set_batch_norm(attn.spatial_bn, state, f"{p}.spatial_interaction.1")
    set_conv(attn.spatial_2, state, f"{p}.spatial_interaction.3")
    if hasattr(attn, "branches"):
        for b, branch in enumerate(attn.branches):
            q = f"{p}.attns.{b}"
            set_dense(branch.pos.pos_proj, state, f"{q}.pos.pos_proj")
            for k, (norm, linear) in enumerate(zip(branch.pos.norms, branch.pos.linears, strict=True), start=1):
                set_norm(norm, state, f"{q}.pos.pos{k}.0")
                set_dense(linear, state, f"{q}.pos.pos{k}.2")
            state.skip(f"{q}.rpe_biases", f"{q}.relative_position_index")  # recomputed from the window size
        state.skip(f"{p}.attn_mask_0", f"{p}.attn_mask_1")  # for the training size; recomputed per input
    else:
        heads = attn.num_heads
        attn.temperature.assign(state.take(f"{p}.temperature", (heads, 1, 1)))


def assign(model: DAT, state: StateDict) -> None:
    set_conv(model.conv_first, state, "conv_first")
    set_norm(model.before_rg_norm, state, "before_RG.1")
    for i, group in enumerate(model.groups):
        for j, block in enumerate(group.blocks):
            p = f"layers.{i}.blocks.{j}"
            set_norm(block.norm1, state, f"{p}.norm1")
            set_norm(block.norm2, state, f"{p}.norm2")
            _set_attention(block.attn, state, f"{p}.attn")
            set_dense(block.ffn.fc1, state, f"{p}.ffn.fc1")
            set_norm(block.ffn.sg_norm, state, f"{p}.ffn.sg.norm")
            set_depthwise_conv(block.ffn.sg_conv, state, f"{p}.ffn.sg.conv")
            set_dense(block.ffn.fc2, state, f"{p}.ffn.fc2")
        _set_resi(group.convs, state, f"layers.{i}.conv")
    set_norm(model.norm, state, "norm")
    _set_resi(model.conv_after_body, state, "conv_after_body")
    if model.upsampler == "pixelshuffle":
        set_conv(model.conv_before_upsample, state, "conv_before_upsample.0")
        for k, (conv, shuffle) in enumerate(zip(model.upsample, model.shuffles, strict=True)):
            perm = torch_to_tf_shuffle_permutation(model.num_feat, shuffle.factor)
            set_conv(conv, state, f"upsample.{2 * k}", out_perm=perm)
        set_conv(model.conv_last, state, "conv_last")
    else:
        perm = torch_to_tf_shuffle_permutation(model.in_chans, model.upscale)
        set_conv(model.upsample[0], state, "upsample.0", out_perm=perm)
