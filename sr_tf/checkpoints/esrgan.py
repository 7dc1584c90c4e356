"""ESRGAN / RRDBNet checkpoints in their three key layouts into `sr_tf.models.RRDBNet`.

Layouts (spandrel's ESRGAN detection knows the same three; its facts, our code):

* old ESRGAN (xinntao/ESRGAN before 2020, most community "model database" files): one
  `nn.Sequential` `model`: `model.0` conv_first; `model.1.sub.{i}.RDB{j}.conv{k}.0` the dense-block
  convs and `model.1.sub.{num_block}` conv_body; per upsampling stage `u` (1-based) its conv at
  `model.{3u}`; then `model.{3n+2}` conv_hr and `model.{3n+4}` conv_last for `n` stages;
* BasicSR / Real-ESRGAN: `conv_first`, `body.{i}.rdb{j}.conv{k}`, `conv_body`, `conv_up{u}`,
  `conv_hr`, `conv_last`;
* BSRGAN / RealSR: `conv_first`, `RRDB_trunk.{i}.RDB{j}.conv{k}`, `trunk_conv`, `upconv{u}`,
  `HRconv`, `conv_last`.

Hyperparameters: `num_feat` and the first conv's input channels from conv_first, `num_grow_ch`
from the first dense conv, `num_block` from the dense-block indices, the output channels from
conv_last, the stages from the upsampling convs. As spandrel does, a first conv taking 4x or 16x
the output channels means a 2x / 4x pixel unshuffle of the input (BasicSR's x2 / x1), and the
scale is `2**stages / unshuffle`. A x3 network (one nearest x3 stage) has exactly the tensors of a
x2 one, so such files are read as x2 (spandrel does the same). ESRGAN+ files (`conv1x1` in the
dense blocks) are recognised and refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from sr_tf.checkpoints.state import CheckpointError, StateDict
from sr_tf.checkpoints.weights import set_conv
from sr_tf.models import RRDBNet, torch_to_tf_shuffle_permutation
from sr_tf.models.rrdbnet import UPSAMPLING

NAME = "ESRGAN"


@dataclass(frozen=True)
class _Layout:
    """Where each conv of the network is in one key layout (prefixes, without `.weight`)."""

    name: str
    first: str
    dense: str  # format string with {i} (block, 0-based), {j} (RDB, 1-3), {k} (conv, 1-5)
    body: str
    ups: tuple[str, ...]
    hr: str
    last: str


def _indices(state: StateDict, pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state if (m := regex.fullmatch(k))})


def _old_layout(state: StateDict) -> _Layout | None:
    if "model.0.weight" not in state or "model.1.sub.0.RDB1.conv1.0.weight" not in state:
        return None
    num_block = len(_indices(state, r"model\.1\.sub\.(\d+)\.RDB\d\.conv\d\.0\.weight"))
    top = max(_indices(state, r"model\.(\d+)\..*"))
    stages, rest = divmod(top - 4, 3)
    if rest or stages < 0:
        raise CheckpointError(f"ESRGAN (old layout): the last layer is model.{top}, expected model.{{3n+4}}")
    return _Layout("old ESRGAN", "model.0", "model.1.sub.{i}.RDB{j}.conv{k}.0", f"model.1.sub.{num_block}",
                   tuple(f"model.{3 * u}" for u in range(1, stages + 1)), f"model.{3 * stages + 2}",
                   f"model.{3 * stages + 4}")


def _named_layout(state: StateDict, name, dense, body, up, hr) -> _Layout | None:
    if not {"conv_first.weight", f"{dense.format(i=0, j=1, k=1)}.weight", f"{body}.weight",
            "conv_last.weight"} <= set(state):
        return None
    stages = _indices(state, rf"{up}(\d+)\.weight")
    if stages != list(range(1, len(stages) + 1)):
        raise CheckpointError(f"ESRGAN ({name} layout): upsampling convs {[f'{up}{u}' for u in stages]} are not 1..n")
    return _Layout(name, "conv_first", dense, body, tuple(f"{up}{u}" for u in stages), hr, "conv_last")


def _layout(state: StateDict) -> _Layout | None:
    return (_old_layout(state)
            or _named_layout(state, "BasicSR", "body.{i}.rdb{j}.conv{k}", "conv_body", "conv_up", "conv_hr")
            or _named_layout(state, "BSRGAN", "RRDB_trunk.{i}.RDB{j}.conv{k}", "trunk_conv", "upconv", "HRconv"))


def _num_block(state: StateDict, layout: _Layout) -> int:
    pattern = re.escape(layout.dense.format(i="@", j=1, k=1)).replace("@", r"(\d+)") + r"\.weight"
    blocks = _indices(state, pattern)
    if blocks != list(range(len(blocks))):
        raise CheckpointError(f"ESRGAN ({layout.name} layout): dense blocks {blocks} are not numbered 0..n-1")
    return len(blocks)


def detect(state: StateDict) -> dict | None:
    layout = _layout(state)
    if layout is None:
        return None
    if any(".conv1x1." in k for k in state):
        raise CheckpointError("ESRGAN+ checkpoints (conv1x1 in the dense blocks) are not supported")
    num_feat, first_in = state.shape(f"{layout.first}.weight")[:2]
    out_ch = state.shape(f"{layout.last}.weight")[0]
    grow = state.shape(f"{layout.dense.format(i=0, j=1, k=1)}.weight")[0]
    unshuffle = 1
    for factor in (2, 4):  # spandrel's rule: 4x or 16x the output channels is an unshuffled input
        if first_in == out_ch * factor * factor:
            unshuffle = factor
    upsampling = 2 ** len(layout.ups)
    if upsampling not in UPSAMPLING or upsampling % unshuffle:
        raise CheckpointError(
            f"ESRGAN: {len(layout.ups)} upsampling stages with a {unshuffle}x pixel unshuffle are not supported"
        )
    return {"num_in_ch": int(first_in // unshuffle**2), "num_out_ch": int(out_ch), "num_feat": int(num_feat),
            "num_block": _num_block(state, layout), "num_grow_ch": int(grow),
            "scale": upsampling // unshuffle, "unshuffle": unshuffle}


def build(params: dict) -> RRDBNet:
    model = RRDBNet(**params)
    model(np.zeros((1, 4, 4, model.num_in_ch), np.float32))
    return model


def assign(model: RRDBNet, state: StateDict) -> None:
    layout = _layout(state)
    if layout is None:
        raise CheckpointError("ESRGAN: the checkpoint has no conv_first / model.0 and dense-block tensors")
    in_perm = None
    if model.unshuffle > 1:  # space_to_depth's channel order -> pixel_unshuffle's
        in_perm = torch_to_tf_shuffle_permutation(model.num_in_ch, model.unshuffle)
    set_conv(model.conv_first, state, layout.first, in_perm=in_perm)
    for i, rrdb in enumerate(model.body):
        for j, rdb in enumerate(rrdb.rdbs, start=1):
            for k, conv in enumerate([*rdb.convs, rdb.conv5], start=1):
                set_conv(conv, state, layout.dense.format(i=i, j=j, k=k))
    set_conv(model.conv_body, state, layout.body)
    if len(layout.ups) != len(model.conv_ups):
        raise CheckpointError(f"ESRGAN: the checkpoint has {len(layout.ups)} upsampling convs, the model "
                              f"{len(model.conv_ups)}")
    for conv, prefix in zip(model.conv_ups, layout.ups, strict=True):
        set_conv(conv, state, prefix)
    set_conv(model.conv_hr, state, layout.hr)
    set_conv(model.conv_last, state, layout.last)


