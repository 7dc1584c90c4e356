"""HAT checkpoints (the authors' layout, HAT-S / HAT / HAT-L and Real-HAT, as spandrel reads them) into
`sr_tf.models.HAT`.

Detection (spandrel's facts): HAT's blocks have a `conv_block` (CAB) and each group an
`overlap_attn` (OCAB), which SwinIR's lack. Input channels and `embed_dim` from `conv_first`;
`num_feat` from `conv_last`; the scale from the `upsample` stages; one RHAG per `layers.{i}`, its
depth the number of `residual_group.blocks.{j}`, its heads the width of the OCAB's bias table; the
window from the blocks' `(2 * ws - 1)**2`-row bias tables, the overlap window `ow` from the OCAB's
`(ws + ow - 1)**2` rows and `overlap_ratio` the first "nice" ratio that makes it (`ow = int(ws *
ratio) + ws`, as spandrel); `compress_ratio` / `squeeze_factor` the ratios that give the CAB's widths
(`embed_dim // ratio`); `mlp_ratio` from `mlp.fc1`; `qkv_bias` and `patch_norm` from whether their
tensors exist; "identity" residual connections when there is no `conv_after_body`. Not stored and
taken as published: `conv_scale` 0.01 and `img_range` 1.

The stored index buffers (`relative_position_index_SA` / `_OCA`) are recomputed, so they are skipped.
"""

from __future__ import annotations

import math

import numpy as np

from sr_tf.checkpoints.state import CheckpointError, StateDict
from sr_tf.checkpoints.swinir import (
    seq_len,
    set_mlp,
    set_window_attention,
    upsample_scale,
    window_from_table,
)
from sr_tf.checkpoints.weights import set_conv, set_dense, set_norm
from sr_tf.models import HAT, torch_to_tf_shuffle_permutation
from sr_tf.models.hat import SCALES, overlap_window_size
from sr_tf.models.swinir import shuffle_stages

NAME = "HAT"
_BLOCK0 = "layers.0.residual_group.blocks.0"
_OCAB0 = "layers.0.residual_group.overlap_attn"
NICE_RATIOS = (0, 1, 0.5, 0.25, 0.75, 0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9)


def overlap_ratio(window_size: int, overlap_size: int) -> float:
    """A ratio `r` with `int(window_size * r) + window_size == overlap_size`, a round one where possible."""
    for ratio in NICE_RATIOS:
        if overlap_window_size(window_size, ratio) == overlap_size:
            return ratio
    ratio = (overlap_size - window_size) / window_size
    return ratio if overlap_window_size(window_size, ratio) == overlap_size else ratio + 0.01 / window_size


def width_ratio(dim: int, width: int, key: str) -> float:
    """A ratio `r` with `int(dim // r) == width`: `dim / width` when that divides, else the integer that works."""
    if width <= 0 or width > dim:
        raise CheckpointError(f"tensor {key!r} has {width} outputs, which is no embed_dim {dim} // a ratio")
    if dim % width == 0:
        return dim // width
    for ratio in (math.ceil(dim / width), math.floor(dim / width)):
        if ratio > 0 and dim // ratio == width:
            return ratio
    return dim / width


def detect(state: StateDict) -> dict | None:
    needed = ("conv_first.weight", "conv_last.weight", f"{_BLOCK0}.conv_block.cab.0.weight",
              f"{_BLOCK0}.attn.relative_position_bias_table", f"{_OCAB0}.relative_position_bias_table",
              f"{_OCAB0}.qkv.weight")
    if not all(k in state for k in needed):
        return None
    if "absolute_pos_embed" in state:
        raise CheckpointError("HAT: absolute position embeddings ('absolute_pos_embed') tie the network to one "
                              "image size and are not supported")
    embed_dim, in_ch = (int(d) for d in state.shape("conv_first.weight")[:2])
    num_feat = int(state.shape("conv_last.weight")[1])
    key = f"{_BLOCK0}.attn.relative_position_bias_table"
    window = window_from_table(state.shape(key)[0], key)
    key = f"{_OCAB0}.relative_position_bias_table"
    rows = state.shape(key)[0]
    side = math.isqrt(rows)
    if side * side != rows or side < 2 * window - 1:
        raise CheckpointError(f"tensor {key!r} has {rows} rows, which is no (window_size + overlap)**2 "
                              f"for window {window}")
    depths, heads = [], []
    for i in range(seq_len(state, "layers")):
        depths.append(seq_len(state, f"layers.{i}.residual_group.blocks"))
        heads.append(int(state.shape(f"layers.{i}.residual_group.overlap_attn.relative_position_bias_table")[1]))
    cab = f"{_BLOCK0}.conv_block.cab"
    return {
        "in_chans": in_ch,
        "embed_dim": embed_dim,
        "depths": tuple(depths),
        "num_heads": tuple(heads),
        "window_size": window,
        "compress_ratio": width_ratio(embed_dim, state.shape(f"{cab}.0.weight")[0], f"{cab}.0.weight"),
        "squeeze_factor": width_ratio(embed_dim, state.shape(f"{cab}.3.attention.1.weight")[0],
                                      f"{cab}.3.attention.1.weight"),
        "overlap_ratio": overlap_ratio(window, side - window + 1),
        "mlp_ratio": state.shape(f"{_BLOCK0}.mlp.fc1.weight")[0] / embed_dim,
        "qkv_bias": f"{_BLOCK0}.attn.qkv.bias" in state,
        "patch_norm": "patch_embed.norm.weight" in state,
        "upscale": upsample_scale(state, num_feat, NAME, SCALES),
        "img_range": 1.0,
        "resi_connection": "1conv" if "conv_after_body.weight" in state else "identity",
        "num_feat": num_feat,
    }


def describe(params: dict) -> dict:
    return {"scale": params["upscale"], "in_channels": params["in_chans"], "out_channels": params["in_chans"]}


def build(params: dict) -> HAT:
    model = HAT(**params)
    model(np.zeros((1, model.window_size, model.window_size, model.in_chans), np.float32))
    return model


def _set_hab(block, state: StateDict, prefix: str) -> None:
    set_norm(block.norm1, state, f"{prefix}.norm1")
    set_window_attention(block.attn, state, f"{prefix}.attn")
    cab = block.conv_block
    set_conv(cab.conv_0, state, f"{prefix}.conv_block.cab.0")
    set_conv(cab.conv_2, state, f"{prefix}.conv_block.cab.2")
    set_conv(cab.attention_1, state, f"{prefix}.conv_block.cab.3.attention.1")
    set_conv(cab.attention_3, state, f"{prefix}.conv_block.cab.3.attention.3")
    set_norm(block.norm2, state, f"{prefix}.norm2")
    set_mlp(block.mlp, state, f"{prefix}.mlp")


def _set_ocab(layer, state: StateDict, prefix: str) -> None:
    set_norm(layer.norm1, state, f"{prefix}.norm1")
    set_dense(layer.qkv, state, f"{prefix}.qkv")
    table = layer.relative_position_bias_table
    table.assign(state.take(f"{prefix}.relative_position_bias_table", tuple(int(d) for d in table.shape)))
    set_dense(layer.proj, state, f"{prefix}.proj")
    set_norm(layer.norm2, state, f"{prefix}.norm2")
    set_mlp(layer.mlp, state, f"{prefix}.mlp")


def assign(model: HAT, state: StateDict) -> None:
    set_conv(model.conv_first, state, "conv_first")
    if model.patch_embed_norm is not None:
        set_norm(model.patch_embed_norm, state, "patch_embed.norm")
    for i, rhag in enumerate(model.rhags):
        for j, block in enumerate(rhag.blocks):
            _set_hab(block, state, f"layers.{i}.residual_group.blocks.{j}")
        _set_ocab(rhag.overlap_attn, state, f"layers.{i}.residual_group.overlap_attn")
        if rhag.conv is not None:
            set_conv(rhag.conv, state, f"layers.{i}.conv")
    set_norm(model.norm, state, "norm")
    if model.conv_after_body is not None:
        set_conv(model.conv_after_body, state, "conv_after_body")
    set_conv(model.conv_before_upsample, state, "conv_before_upsample.0")
    stages = shuffle_stages(model.upscale) if model.upscale > 1 else ()
    for i, (conv, r) in enumerate(zip(model.up_convs, stages, strict=True)):
        set_conv(conv, state, f"upsample.{2 * i}", out_perm=torch_to_tf_shuffle_permutation(model.num_feat, r))
    set_conv(model.conv_last, state, "conv_last")
    state.skip("relative_position_index_SA", "relative_position_index_OCA")  # recomputed
