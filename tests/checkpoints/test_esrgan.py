"""ESRGAN / RRDBNet checkpoints (old ESRGAN, BasicSR and BSRGAN key layouts) against spandrel's ESRGAN.

spandrel builds only the old layout; the BasicSR and BSRGAN files here are its state dicts renamed,
and each renaming is checked by spandrel's own converter, which must map it back exactly.
"""

import importlib
import re

import numpy as np
import pytest

from sr_tf.checkpoints import CheckpointError, StateDict, registry
from sr_tf.models import RRDBNet
from tests.checkpoints.oracle import (
    photo_crop,
    psnr,
    randomize,
    spandrel_arch,
    state_of,
    torch_forward,
)

# (spandrel ESRGAN arguments, growth channels, our RRDBNet arguments detection must give)
VARIANTS = [
    (dict(in_nc=3, out_nc=3, num_filters=8, num_blocks=2, scale=4), 32,
     dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2, num_grow_ch=32, scale=4, unshuffle=1)),
    (dict(in_nc=12, out_nc=3, num_filters=6, num_blocks=1, scale=4, shuffle_factor=2), 4,
     dict(num_in_ch=3, num_out_ch=3, num_feat=6, num_block=1, num_grow_ch=4, scale=2, unshuffle=2)),
    (dict(in_nc=48, out_nc=3, num_filters=4, num_blocks=1, scale=4, shuffle_factor=4), 4,
     dict(num_in_ch=3, num_out_ch=3, num_feat=4, num_block=1, num_grow_ch=4, scale=1, unshuffle=4)),
    (dict(in_nc=3, out_nc=3, num_filters=4, num_blocks=1, scale=8), 4,
     dict(num_in_ch=3, num_out_ch=3, num_feat=4, num_block=1, num_grow_ch=4, scale=8, unshuffle=1)),
    (dict(in_nc=3, out_nc=3, num_filters=4, num_blocks=1, scale=2), 4,
     dict(num_in_ch=3, num_out_ch=3, num_feat=4, num_block=1, num_grow_ch=4, scale=2, unshuffle=1)),
    (dict(in_nc=1, out_nc=1, num_filters=4, num_blocks=3, scale=1), 4,
     dict(num_in_ch=1, num_out_ch=1, num_feat=4, num_block=3, num_grow_ch=4, scale=1, unshuffle=1)),
]


def _spandrel(params, grow, monkeypatch, seed=0):
    """spandrel's ESRGAN, whose RRDBs it always builds with 32 growth channels, with `grow` instead."""
    arch = spandrel_arch("ESRGAN")  # imports spandrel the oracle's way first
    block = importlib.import_module("spandrel.architectures.__arch_helpers.block")
    original = block.RRDB
    monkeypatch.setattr(block, "RRDB", lambda **kw: original(**{**kw, "gc": grow}))
    net = arch.ESRGAN(**params)
    monkeypatch.setattr(block, "RRDB", original)
    return randomize(net, seed, scale=0.1)


def _renamed(old: dict, layout: str) -> dict:
    """The old-layout state dict under BasicSR's or BSRGAN's names."""
    dense, body, up, hr = {
        "basicsr": ("body.{}.rdb{}.conv{}.", "conv_body.", "conv_up", "conv_hr."),
        "bsrgan": ("RRDB_trunk.{}.RDB{}.conv{}.", "trunk_conv.", "upconv", "HRconv."),
    }[layout]
    top = max(int(k.split(".")[1]) for k in old)
    stages = (top - 4) // 3
    num_block = max(int(m.group(1)) for k in old if (m := re.match(r"model\.1\.sub\.(\d+)\.RDB", k))) + 1
    new = {}
    for key, value in old.items():
        if m := re.fullmatch(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)", key):
            new[dense.format(*m.groups()[:3]) + m.group(4)] = value
            continue
        kind = key.rsplit(".", 1)[1]
        index = key.split(".")[1]
        if key.startswith(f"model.1.sub.{num_block}."):
            new[body + kind] = value
        elif index == "0":
            new["conv_first." + kind] = value
        elif int(index) == 3 * stages + 2:
            new[hr + kind] = value
        elif int(index) == 3 * stages + 4:
            new["conv_last." + kind] = value
        else:
            new[f"{up}{int(index) // 3}.{kind}"] = value
    back = spandrel_arch("ESRGAN")._to_old_arch(dict(new))
    assert set(back) == set(old) and all(back[k] is old[k] for k in old), "renaming disagrees with spandrel"
    return new


def _check(net, tensors, expected, size=(21, 17)):
    model, found = registry.build_and_assign(StateDict(tensors))
    assert found.name == "ESRGAN" and isinstance(model, RRDBNet)
    assert found.params == expected
    x = photo_crop(*size, channels=expected["num_in_ch"])
    ours, theirs = model(x).numpy(), torch_forward(net, x)
    assert ours.shape == theirs.shape
    assert psnr(ours, theirs) >= 60, psnr(ours, theirs)


CASES = [(0, "old"), (1, "basicsr")]
LARGE = [(0, "basicsr"), (0, "bsrgan"), (1, "old"), (2, "basicsr"), (2, "old"), (3, "old"), (3, "bsrgan"),
         (4, "old"), (5, "old")]


@pytest.mark.parametrize("index,layout", CASES + [pytest.param(*c, marks=pytest.mark.large) for c in LARGE])
def test_esrgan_matches_spandrel(index, layout, monkeypatch):
    params, grow, expected = VARIANTS[index]
    net = _spandrel(params, grow, monkeypatch)
    tensors = state_of(net)
    if layout != "old":
        tensors = _renamed(tensors, layout)
    _check(net, tensors, expected)


def test_esrgan_plus_is_refused(monkeypatch):
    params, grow, _ = VARIANTS[4]
    net = spandrel_arch("ESRGAN").ESRGAN(**params, plus=True)
    with pytest.raises(CheckpointError, match="ESRGAN\\+"):
        registry.build_and_assign(StateDict(state_of(net)))


def _state(monkeypatch, layout="basicsr"):
    params, grow, _ = VARIANTS[1]
    return _renamed(state_of(_spandrel(params, grow, monkeypatch)), layout)


def test_a_missing_tensor_is_named(monkeypatch):
    tensors = _state(monkeypatch)
    del tensors["body.0.rdb2.conv4.bias"]
    with pytest.raises(CheckpointError, match=r"body\.0\.rdb2\.conv4\.bias"):
        registry.build_and_assign(StateDict(tensors))


def test_a_wrong_shape_is_named(monkeypatch):
    tensors = _state(monkeypatch)
    tensors["conv_hr.weight"] = np.zeros((6, 5, 3, 3), np.float32)
    with pytest.raises(CheckpointError, match=r"conv_hr\.weight.*\(6, 5, 3, 3\).*\(6, 6, 3, 3\)"):
        registry.build_and_assign(StateDict(tensors))


def test_an_extra_tensor_fails(monkeypatch):
    tensors = _state(monkeypatch)
    tensors["body.0.rdb4.conv1.weight"] = np.zeros((4, 6, 3, 3), np.float32)
    with pytest.raises(CheckpointError, match=r"body\.0\.rdb4\.conv1\.weight"):
        registry.build_and_assign(StateDict(tensors))
