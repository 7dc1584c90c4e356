"""`sr-tf inspect` and `sr-tf convert` on a test-only 1-conv architecture (tests/checkpoints/tiny_arch.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from checkpoints import tiny_arch
from checkpoints.test_load import photo, tiny_state, torch_output
from cli_helpers import run_cli

from sr_tf.checkpoints import inspect_checkpoint, registry
from sr_tf.cli import main

torch = pytest.importorskip("torch")


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(registry, "ARCHITECTURES", (tiny_arch.__name__,))


@pytest.fixture
def ckpt(tmp_path):
    path = tmp_path / "tiny.pth"
    torch.save({"params_ema": dict(tiny_state(scale=2)), "iter": 300}, path)
    return path


def test_inspect_prints_the_facts(capsys, tiny, ckpt):
    assert main(["inspect", str(ckpt)]) == 0
    lines = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    facts = {k: v.strip() for k, v in lines.items()}
    assert facts["file"] == str(ckpt) and facts["format"] == "torch zip, state dict under 'params_ema'"
    assert facts["architecture"] == "TinyConv" and facts["scale"] == "x2" and facts["channels"] == "3 in"
    assert facts["hyperparameters"] == "in_channels=3, scale=2, kernel_size=3"
    assert facts["tensors"] == "2 (336 parameters); stored as float32 (2)" and facts["metadata"] == "iter=300"


def test_inspect_json_is_the_library_dict(capsys, tiny, ckpt):
    assert main(["inspect", "--json", str(ckpt)]) == 0
    assert json.loads(capsys.readouterr().out) == inspect_checkpoint(ckpt)


def test_inspect_an_unknown_architecture_in_one_line(capsys, tiny, tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"body.weight": torch.ones(4, 3, 3, 3)}, path)
    assert main(["inspect", str(path)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("architecture:"))
    assert "not recognised: 1 tensors in body.* (1); the first conv 'body.weight' takes 3 channels" in line
    assert "TinyConv" in line


def test_convert_writes_a_model_that_gives_the_same_output(capsys, tiny, ckpt, tmp_path):
    import keras

    out = tmp_path / "tiny.keras"
    assert main(["convert", str(ckpt), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"Converted {ckpt} (TinyConv, x2) to {out}"
    x = photo(9, 13)
    np.testing.assert_allclose(np.asarray(keras.saving.load_model(out)(x)), torch_output(tiny_state(scale=2), x),
                               atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.keras", "tiny.pth"]  # no temporary left

    before = out.read_bytes()
    assert main(["convert", str(ckpt), "-o", str(out)]) == 2
    assert "give --force" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert main(["convert", str(ckpt), "-o", str(out), "--force"]) == 0


def test_convert_refuses_to_overwrite_naming_the_flag(capsys, tiny, ckpt, tmp_path):
    out = tmp_path / "x.keras"
    out.write_bytes(b"keep")
    assert main(["convert", str(ckpt), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"sr-tf convert: error: --output {out} exists already: give --force to replace it"
    assert out.read_bytes() == b"keep"


def test_convert_of_an_unknown_architecture_writes_nothing(capsys, tiny, tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"body.weight": torch.ones(4, 3, 3, 3)}, path)
    assert main(["convert", str(path), "-o", str(tmp_path / "m.keras")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"sr-tf convert: {path}: unknown architecture")
    assert [p.name for p in tmp_path.iterdir()] == ["other.pth"]


@pytest.mark.parametrize("argv, needle", [
    (["convert", "{ckpt}", "-o", "{tmp}/m.h5"], "--output must name a .keras file"),
    (["convert", "{tmp}/missing.pth", "-o", "{tmp}/m.keras"], "CKPT"),
    (["convert", "{ckpt}", "-o", "{tmp}/no/such/m.keras"], "does not exist"),
    (["convert", "{ckpt}"], "-o/--output"),
    (["inspect", "{tmp}/evil.pth"], "posix.system"),
    (["inspect", "{tmp}"], "is a directory"),
    (["inspect", "{tmp}/missing.pth"], "no such file"),
], ids=["suffix", "missing-ckpt", "missing-folder", "no-output", "hostile", "directory", "missing"])
def test_mistakes_are_one_line_without_heavy_imports(tmp_path, ckpt, argv, needle):
    import os

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {tmp_path}/pwned",)

    (tmp_path / "evil.pth").write_bytes(_legacy(Exploit()))
    before = sorted(os.listdir(tmp_path))
    argv = [a.format(ckpt=ckpt, tmp=tmp_path) for a in argv]
    status, heavy, out, err = run_cli(argv)
    assert status == 2, err
    assert heavy == [], heavy
    assert needle in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if not line.startswith("usage:")]) == 1, err
    assert sorted(os.listdir(tmp_path)) == before and not (tmp_path / "pwned").exists()


def _legacy(payload) -> bytes:
    """A legacy-format torch file whose object pickle holds `payload`."""
    import pickle

    head = b"".join(pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    return head + pickle.dumps({"x": payload}, protocol=2)
