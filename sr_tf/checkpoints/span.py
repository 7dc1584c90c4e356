"""SPAN checkpoints (the authors' / spandrel's PyTorch layout) into `sr_tf.models.SPAN`.

Each `Conv3XC` of the PyTorch network holds a training form, a 1x1 `sk` skip beside a 1x1 -> 3x3 ->
1x1 stack `conv.0/1/2`, and `eval_conv`, the single 3x3 conv they fuse into. spandrel (and the
authors' code) recompute `eval_conv` from the training form on every evaluation forward, so a
stored `eval_conv` may be stale; we fuse the training form the same way when it is present and
take `eval_conv` as it is only when the file has nothing else.

Detection (spandrel's facts): the input channels and `feature_channels` come from `conv_1`, the
scale and output channels from `upsampler.0` (`scale**2 * out_ch` outputs, `out_ch` the input's
channels if that fits, else 3, 4 or 1), and a `no_norm` buffer means no input normalisation
(otherwise `(x - DIV2K mean) * 255`; neither number is stored in the file).
"""

from __future__ import annotations

import numpy as np

from sr_tf.checkpoints.state import CheckpointError, StateDict
from sr_tf.checkpoints.weights import pixel_shuffle_scale, set_conv
from sr_tf.models import SPAN, torch_to_tf_shuffle_permutation
from sr_tf.models.span import DIV2K_RGB_MEAN, NUM_BLOCKS, SCALES

NAME = "SPAN"
PUBLISHED_IMG_RANGE = 255.0
_CONV3XC = ["conv_1", *(f"block_{b}.c{i}_r" for b in range(1, NUM_BLOCKS + 1) for i in (1, 2, 3)), "conv_2"]


def _first_conv(state: StateDict) -> tuple[int, int]:
    """`(feature_channels, in_ch)` of `conv_1`, from whichever of its forms the file has."""
    for key in ("conv_1.sk.weight", "conv_1.eval_conv.weight"):
        if key in state:
            return tuple(int(d) for d in state.shape(key)[:2])
    raise CheckpointError("SPAN: the checkpoint has no tensor 'conv_1.sk.weight' or 'conv_1.eval_conv.weight'")


def detect(state: StateDict) -> dict | None:
    if "conv_cat.weight" not in state or "upsampler.0.weight" not in state:
        return None
    if not any(k in state for k in ("block_1.c1_r.sk.weight", "block_1.c1_r.eval_conv.weight")):
        return None
    feat, in_ch = _first_conv(state)
    channels = state.shape("upsampler.0.weight")[0]
    found = pixel_shuffle_scale(channels, in_ch)
    if found is None or found[0] not in SCALES:
        raise CheckpointError(
            f"SPAN: upsampler.0 has {channels} outputs, which is no supported scale {SCALES} "
            f"times 1, 3, 4 or {in_ch} channels"
        )
    scale, out_ch = found
    if "no_norm" in state:
        img_range, mean = 1.0, (0.0,) * in_ch
    elif in_ch == len(DIV2K_RGB_MEAN):
        img_range, mean = PUBLISHED_IMG_RANGE, DIV2K_RGB_MEAN
    else:
        raise CheckpointError(
            f"SPAN: conv_1 takes {in_ch} channels but the network normalises with a 3-channel mean "
            "(no 'no_norm' buffer); such a file cannot be run"
        )
    return {"num_in_ch": in_ch, "num_out_ch": out_ch, "feature_channels": feat, "upscale": scale,
            "img_range": img_range, "rgb_mean": mean}


def build(params: dict) -> SPAN:
    model = SPAN(**params)
    model(np.zeros((1, 4, 4, model.num_in_ch), np.float32))
    return model


def fused_conv3xc(state: StateDict, prefix: str, cin: int, cout: int) -> tuple[np.ndarray, np.ndarray]:
    """`Conv3XC` as one 3x3 conv: PyTorch weight `[cout, cin, 3, 3]` and bias `[cout]` (float32).

    `sk(x) + conv.2(conv.1(conv.0(x)))` with 1x1 `conv.0` (cin -> m), 3x3 `conv.1` (m -> n) and
    1x1 `conv.2` (n -> cout) is linear, so its kernel is `w2 . w1 . w0` (+ `sk` at the centre tap)
    and its bias `w2 . (sum_taps w1 . b0 + b1) + b2 (+ sk bias)`. Uses the stored `eval_conv`
    instead when the training form is absent.
    """
    if f"{prefix}.sk.weight" not in state:
        return (state.take(f"{prefix}.eval_conv.weight", (cout, cin, 3, 3)),
                state.take(f"{prefix}.eval_conv.bias", (cout,)))
    sk_w = state.take(f"{prefix}.sk.weight", (cout, cin, 1, 1)).astype(np.float64)[:, :, 0, 0]
    sk_b = state.take(f"{prefix}.sk.bias", (cout,)).astype(np.float64)
    w0 = state.take(f"{prefix}.conv.0.weight").astype(np.float64)
    m = w0.shape[0]
    if w0.shape != (m, cin, 1, 1):
        raise CheckpointError(f"tensor '{prefix}.conv.0.weight' has shape {w0.shape}, the model expects ({m}, {cin}, 1, 1)")
    b0 = state.take(f"{prefix}.conv.0.bias", (m,)).astype(np.float64)
    w1 = state.take(f"{prefix}.conv.1.weight").astype(np.float64)
    n = w1.shape[0]
    if w1.shape != (n, m, 3, 3):
        raise CheckpointError(f"tensor '{prefix}.conv.1.weight' has shape {w1.shape}, the model expects ({n}, {m}, 3, 3)")
    b1 = state.take(f"{prefix}.conv.1.bias", (n,)).astype(np.float64)
    w2 = state.take(f"{prefix}.conv.2.weight", (cout, n, 1, 1)).astype(np.float64)[:, :, 0, 0]
    b2 = state.take(f"{prefix}.conv.2.bias", (cout,)).astype(np.float64)
    weight = np.einsum("on,nmyx,mi->oiyx", w2, w1, w0[:, :, 0, 0])
    weight[:, :, 1, 1] += sk_w
    bias = w2 @ (np.einsum("nmyx,m->n", w1, b0) + b1) + b2 + sk_b
    state.skip(f"{prefix}.eval_conv.weight", f"{prefix}.eval_conv.bias")  # recomputed, as spandrel does
    return weight.astype(np.float32), bias.astype(np.float32)


def _set_fused(layer, state: StateDict, prefix: str) -> None:
    cin, cout = int(layer.kernel.shape[2]), int(layer.kernel.shape[3])
    weight, bias = fused_conv3xc(state, prefix, cin, cout)
    layer.set_weights([weight.transpose(2, 3, 1, 0), bias])


def assign(model: SPAN, state: StateDict) -> None:
    layers = [model.conv_1, *(c for block in model.blocks for c in (block.c1, block.c2, block.c3)), model.conv_2]
    for layer, prefix in zip(layers, _CONV3XC, strict=True):
        _set_fused(layer, state, prefix)
    set_conv(model.conv_cat, state, "conv_cat")
    perm = torch_to_tf_shuffle_permutation(model.num_out_ch, model.upscale)
    set_conv(model.conv_up, state, "upsampler.0", out_perm=perm)
    state.skip("no_norm")  # a flag, read by detect
