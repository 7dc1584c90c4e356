"""The README's retraining example, run exactly as written (on tiny photo folders it creates)."""

import re
from pathlib import Path

import keras
import numpy as np
from train_helpers import write_images

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    text = README.read_text()
    marker = text.index("<!-- readme-retraining-example -->")
    return re.search(r"```python\n(.*?)```", text[marker:], re.S).group(1)


def test_readme_retraining_example_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SR_TF_CACHE_DIR", str(tmp_path / "cache"))
    write_images(tmp_path / "photos", (96, 96), count=3, seed=5)
    write_images(tmp_path / "val_photos", (64, 80), count=1, seed=6)
    namespace: dict = {}
    exec(compile(readme_example(), str(README), "exec"), namespace)
    model = namespace["model"]
    assert int(model.step.numpy()) == 20
    retrained = keras.saving.load_model(tmp_path / "retrain" / "generator.keras")
    assert (tmp_path / "retrain" / "best.keras").is_file() and (tmp_path / "retrain" / "log.csv").is_file()
    pretrained = namespace["load_pretrained"]("realesr-animevideov3-x4")
    assert any(not np.array_equal(a, b) for a, b in zip(retrained.get_weights(), pretrained.get_weights(), strict=True))
    x = np.random.default_rng(0).random((1, 12, 10, 3), dtype=np.float32)
    assert retrained(x).shape == (1, 48, 40, 3)
