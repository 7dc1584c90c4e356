"""SwinIR checkpoints (the authors' KAIR / BasicSR layout, as spandrel reads them) into `sr_tf.models.SwinIR`.

Detection (spandrel's facts): the input channels and `embed_dim` from `conv_first`; one RSTB per
`layers.{i}`, its depth the number of `residual_group.blocks.{j}` and its heads the width of their
`relative_position_bias_table`, whose `(2 * window - 1)**2` rows give the window; `mlp_ratio` from
`mlp.fc1`; the upsampler from which convs exist (`conv_before_upsample` + `conv_up1`: "nearest+conv",
`conv_before_upsample`: "pixelshuffle", `upsample.0` alone: "pixelshuffledirect", none: "" x1);
the scale from the upsampler's convs; "3conv" when `conv_after_body` is a sequence. `img_range` is
not stored: like spandrel, 255 for window 7 (the JPEG models, the only ones with that window), else 1.

The stored buffers (`relative_position_index`, and `attn_mask` for the training image size) are
recomputed by the model for every input size, so they are skipped; the model does not depend on
the training `img_size`.
"""

from __future__ import annotations

import math

import numpy as np

from sr_tf.checkpoints.state import CheckpointError, StateDict
from sr_tf.checkpoints.weights import set_conv, set_dense, set_norm
from sr_tf.models import SwinIR, torch_to_tf_shuffle_permutation
from sr_tf.models.swinir import SCALES, shuffle_stages

NAME = "SwinIR"
JPEG_WINDOW, JPEG_IMG_RANGE = 7, 255.0
DEFAULT_NUM_FEAT = 64  # the reconstruction width, unused (not stored) by "pixelshuffledirect" and ""
_BLOCK0 = "layers.0.residual_group.blocks.0"


def seq_len(state: StateDict, prefix: str) -> int:
    """1 + the largest `i` of keys `{prefix}.{i}.*` (0 when there are none)."""
    found = {int(k[len(prefix) + 1:].split(".", 1)[0]) for k in state.keys_with(prefix + ".")
             if k[len(prefix) + 1:].split(".", 1)[0].isdigit()}
    return max(found) + 1 if found else 0


def window_from_table(rows: int, key: str) -> int:
    """The window size whose relative position bias table has `rows` = `(2 * ws - 1)**2` rows."""
    side = math.isqrt(rows)
    if side * side != rows or side % 2 == 0:
        raise CheckpointError(f"tensor {key!r} has {rows} rows, which is no (2 * window_size - 1)**2")
    return (side + 1) // 2


def _upsampler(state: StateDict) -> str:
    if "conv_before_upsample.0.weight" in state:
        return "nearest+conv" if "conv_up1.weight" in state else "pixelshuffle"
    return "pixelshuffledirect" if "upsample.0.weight" in state else ""


def upsample_scale(state: StateDict, num_feat: int, arch: str = NAME, scales=SCALES["pixelshuffle"]) -> int:
    """The scale of the classical `Upsample` at `upsample.{0,2,..}` (a conv and a shuffle per stage), checked."""
    stages = []
    for i in range(0, seq_len(state, "upsample"), 2):  # conv, shuffle, conv, shuffle, ...
        out = state.shape(f"upsample.{i}.weight")[0]
        r = math.isqrt(out // num_feat)
        if r * r * num_feat != out:
            raise CheckpointError(f"{arch}: upsample.{i} has {out} outputs, which is no r**2 * {num_feat}")
        stages.append(r)
    scale = math.prod(stages)
    if scale not in scales or tuple(stages) != shuffle_stages(scale):
        raise CheckpointError(f"{arch}: the upsample stages {stages} make no supported scale {scales}")
    return scale


def _scale(state: StateDict, upsampler: str, in_ch: int, num_feat: int) -> int:
    if upsampler == "pixelshuffle":
        return upsample_scale(state, num_feat)
    if upsampler == "nearest+conv":
        scale = 2 ** sum(f"conv_up{i}.weight" in state for i in (1, 2, 3))
    elif upsampler == "pixelshuffledirect":
        out = state.shape("upsample.0.weight")[0]
        scale = math.isqrt(out // in_ch)
        if scale * scale * in_ch != out:
            raise CheckpointError(f"SwinIR: upsample.0 has {out} outputs, which is no scale**2 * {in_ch} channels")
    else:
        scale = 1
    if scale not in SCALES[upsampler]:
        raise CheckpointError(f"SwinIR: upsampler {upsampler!r} supports scales {SCALES[upsampler]}, the "
                              f"checkpoint's convs make x{scale}")
    return scale


def detect(state: StateDict) -> dict | None:
    needed = (f"{_BLOCK0}.norm1.weight", f"{_BLOCK0}.attn.relative_position_bias_table", f"{_BLOCK0}.mlp.fc1.bias")
    if not all(k in state for k in needed):
        return None
    if "relative_position_index_SA" in state or f"{_BLOCK0}.conv_block.cab.0.weight" in state:
        return None  # HAT
    if f"{_BLOCK0}.attn.logit_scale" in state:
        return None  # Swin2SR (Swin v2 attention)
    if "conv_first.weight" not in state:
        if "conv_first.1.weight" in state:
            raise CheckpointError("SwinIR: this checkpoint unshuffles its input first ('conv_first.1'), "
                                  "a variant that is not supported")
        return None
    if "absolute_pos_embed" in state:
        raise CheckpointError("SwinIR: absolute position embeddings ('absolute_pos_embed') tie the network to "
                              "one image size and are not supported")
    embed_dim, in_ch = (int(d) for d in state.shape("conv_first.weight")[:2])
    depths, heads = [], []
    for i in range(seq_len(state, "layers")):
        depths.append(seq_len(state, f"layers.{i}.residual_group.blocks"))
        heads.append(int(state.shape(f"layers.{i}.residual_group.blocks.0.attn.relative_position_bias_table")[1]))
    key = f"{_BLOCK0}.attn.relative_position_bias_table"
    window = window_from_table(state.shape(key)[0], key)
    upsampler = _upsampler(state)
    if upsampler == "pixelshuffle":
        num_feat = int(state.shape("upsample.0.weight")[1])
    elif upsampler == "nearest+conv":
        num_feat = int(state.shape("conv_before_upsample.0.weight")[0])
    else:
        num_feat = DEFAULT_NUM_FEAT
    return {
        "in_chans": in_ch,
        "embed_dim": embed_dim,
        "depths": tuple(depths),
        "num_heads": tuple(heads),
        "window_size": window,
        "mlp_ratio": state.shape(f"{_BLOCK0}.mlp.fc1.bias")[0] / embed_dim,
        "upscale": _scale(state, upsampler, in_ch, num_feat),
        "img_range": JPEG_IMG_RANGE if window == JPEG_WINDOW else 1.0,
        "upsampler": upsampler,
        "resi_connection": "1conv" if "conv_after_body.weight" in state else "3conv",
        "num_feat": num_feat,
    }


def describe(params: dict) -> dict:
    return {"scale": params["upscale"], "in_channels": params["in_chans"], "out_channels": params["in_chans"]}


def build(params: dict) -> SwinIR:
    model = SwinIR(**params)
    model(np.zeros((1, model.window_size, model.window_size, model.in_chans), np.float32))
    return model


def set_residual_conv(layer, state: StateDict, prefix: str) -> None:
    """`ResidualConv` from `prefix` ("1conv") or `prefix.0/.2/.4` ("3conv")."""
    if len(layer.convs) == 1:
        set_conv(layer.convs[0], state, prefix)
    else:
        for conv, i in zip(layer.convs, (0, 2, 4), strict=True):
            set_conv(conv, state, f"{prefix}.{i}")


def set_window_attention(layer, state: StateDict, prefix: str) -> None:
    """A `WindowAttention` from torch's `prefix.qkv`, `prefix.proj` and `prefix.relative_position_bias_table`."""
    set_dense(layer.qkv, state, f"{prefix}.qkv")
    set_dense(layer.proj, state, f"{prefix}.proj")
    table = layer.relative_position_bias_table
    table.assign(state.take(f"{prefix}.relative_position_bias_table", tuple(int(d) for d in table.shape)))
    state.skip(f"{prefix}.relative_position_index")  # recomputed


def set_mlp(layer, state: StateDict, prefix: str) -> None:
    set_dense(layer.fc1, state, f"{prefix}.fc1")
    set_dense(layer.fc2, state, f"{prefix}.fc2")


def set_swin_block(block, state: StateDict, prefix: str) -> None:
    set_norm(block.norm1, state, f"{prefix}.norm1")
    set_window_attention(block.attn, state, f"{prefix}.attn")
    set_norm(block.norm2, state, f"{prefix}.norm2")
    set_mlp(block.mlp, state, f"{prefix}.mlp")
    state.skip(f"{prefix}.attn_mask")  # the training size's mask; recomputed for each input


def assign(model: SwinIR, state: StateDict) -> None:
    set_conv(model.conv_first, state, "conv_first")
    set_norm(model.patch_norm, state, "patch_embed.norm")
    for i, rstb in enumerate(model.rstbs):
        for j, block in enumerate(rstb.blocks):
            set_swin_block(block, state, f"layers.{i}.residual_group.blocks.{j}")
        set_residual_conv(rstb.conv, state, f"layers.{i}.conv")
    set_norm(model.norm, state, "norm")
    set_residual_conv(model.conv_after_body, state, "conv_after_body")
    if model.upsampler in ("pixelshuffle", "nearest+conv"):
        set_conv(model.conv_before_upsample, state, "conv_before_upsample.0")
    if model.upsampler == "pixelshuffle":
        for i, (conv, r) in enumerate(zip(model.up_convs, shuffle_stages(model.upscale), strict=True)):
            set_conv(conv, state, f"upsample.{2 * i}", out_perm=torch_to_tf_shuffle_permutation(model.num_feat, r))
    elif model.upsampler == "pixelshuffledirect":
        perm = torch_to_tf_shuffle_permutation(model.in_chans, model.upscale)
        set_conv(model.up_convs[0], state, "upsample.0", out_perm=perm)
    elif model.upsampler == "nearest+conv":
        for i, conv in enumerate(model.up_convs):
            set_conv(conv, state, f"conv_up{i + 1}")
        set_conv(model.conv_hr, state, "conv_hr")
    if model.upsampler != "pixelshuffledirect":
        set_conv(model.conv_last, state, "conv_last")
