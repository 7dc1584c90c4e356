"""PLKSR and RealPLKSR checkpoints (the authors' / spandrel's PyTorch layout) into `sr_tf.models.PLKSR` / `RealPLKSR`.

Detection (spandrel's facts): `feats.0` is the head conv (its outputs are `dim`), `feats.1..n` the blocks,
then the tail conv (`3 * scale**2` outputs) right after them (PLKSR) or after a parameterless
Dropout2d (RealPLKSR). PLKSR spells its mixer `channe_mixer` (sic), RealPLKSR `channel_mixer`. The
mixer's kernel sizes give `ccm_type`, `feats.1.lk.conv` gives `kernel_size` and `split_ratio`
(its channels / dim), `feats.1.attn.f.0` means `use_ea`, `feats.1.layer_norm` RealPLKSR's LayerNorm
variant (else a GroupNorm whose 4 groups are not stored). The ablation-study large kernels
(`lk.convs.*`, `lk.mn_conv`) and RealPLKSR's DySample upsampler (`to_img.*`) are refused.
"""

from __future__ import annotations

import math

import numpy as np

from sr_tf.checkpoints.state import CheckpointError, StateDict
from sr_tf.checkpoints.swinir import seq_len
from sr_tf.checkpoints.weights import set_conv, set_norm
from sr_tf.models import PLKSR, RealPLKSR, torch_to_tf_shuffle_permutation
from sr_tf.models.plksr import SCALES

NAME = "PLKSR"
_CCM = {(3, 1): "CCM", (3, 3): "DCCM", (1, 3): "ICCM"}


def _mixer(real: bool) -> str:
    return "channel_mixer" if real else "channe_mixer"


def detect(state: StateDict) -> dict | None:
    if "feats.0.weight" not in state or "feats.1.refine.weight" not in state:
        return None
    lk_keys = ("feats.1.lk.conv.weight", "feats.1.lk.convs.0.weight", "feats.1.lk.mn_conv.weight")
    real = "feats.1.channel_mixer.0.weight" in state
    if not any(k in state for k in lk_keys) or not (real or "feats.1.channe_mixer.0.weight" in state):
        return None
    if "feats.1.lk.conv.weight" not in state:
        raise CheckpointError("PLKSR: only the partial large kernel 'lk.conv' is supported; this file has the "
                              "ablation study's sparse / rectangular kernels (feats.1.lk.convs.* or lk.mn_conv)")
    if any(k.startswith("to_img.") for k in state):
        raise CheckpointError("RealPLKSR: the DySample upsampler (tensors 'to_img.*') is not supported")
    dim = state.shape("feats.0.weight")[0]
    total = seq_len(state, "feats")
    tail = f"feats.{total - 1}.weight"
    scale = math.isqrt(state.shape(tail)[0] // 3)
    if scale * scale * 3 != state.shape(tail)[0] or scale not in SCALES:
        raise CheckpointError(f"PLKSR: {tail!r} has {state.shape(tail)[0]} outputs, not 3 * scale**2 for a scale in {SCALES}")
    lk = state.shape("feats.1.lk.conv.weight")
    params = {"dim": dim, "n_blocks": total - (3 if real else 2), "upscaling_factor": scale,
              "kernel_size": lk[2], "split_ratio": lk[0] / dim, "use_ea": "feats.1.attn.f.0.weight" in state}
    if real:
        return {**params, "layer_norm": "feats.1.layer_norm.bias" in state, "norm_groups": 4, "real": True}
    kernels = tuple(state.shape(f"feats.1.channe_mixer.{i}.weight")[2] for i in (0, 2))
    if kernels not in _CCM:
        raise CheckpointError(f"PLKSR: channel mixer kernels {kernels} (feats.1.channe_mixer.0 / .2) are no CCM, ICCM or DCCM")
    return {**params, "ccm_type": _CCM[kernels], "real": False}


def describe(params: dict) -> dict:
    return {"scale": params["upscaling_factor"], "in_channels": 3, "out_channels": 3}


def build(params: dict):
    kwargs = {k: v for k, v in params.items() if k != "real"}
    model = RealPLKSR(**kwargs, name="RealPLKSR") if params["real"] else PLKSR(**kwargs)
    model(np.zeros((1, 4, 4, 3), np.float32))
    return model


def assign(model, state: StateDict) -> None:
    real = isinstance(model, RealPLKSR)
    set_conv(model.head, state, "feats.0")
    for i, block in enumerate(model.blocks, start=1):
        p = f"feats.{i}"
        set_conv(block.mixer_0, state, f"{p}.{_mixer(real)}.0")
        set_conv(block.mixer_2, state, f"{p}.{_mixer(real)}.2")
        set_conv(block.lk, state, f"{p}.lk.conv")
        if block.attn is not None:
            set_conv(block.attn, state, f"{p}.attn.f.0")
        set_conv(block.refine, state, f"{p}.refine")
        if block.pre_norm is not None:
            set_norm(block.pre_norm, state, f"{p}.layer_norm")
        if block.post_norm is not None:
            set_norm(block.post_norm, state, f"{p}.norm")
    tail = f"feats.{model.n_blocks + (2 if real else 1)}"
    set_conv(model.tail, state, tail, out_perm=torch_to_tf_shuffle_permutation(3, model.upscaling_factor))
