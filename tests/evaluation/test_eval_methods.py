import numpy as np
import pytest
from eval_helpers import colourful

from sr_tf.evaluation import methods


def _matlab_upscale_1d_matrix(n: int, scale: int) -> np.ndarray:
    """Independent reference: MATLAB imresize upscaling weights (Keys a=-0.5, mirrored borders)."""

    def keys(t):
        t = np.abs(t)
        return np.where(t <= 1, 1.5 * t**3 - 2.5 * t**2 + 1, np.where(t < 2, -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2, 0.0))

    m = np.zeros((n * scale, n))
    for i in range(n * scale):
        src = (i + 0.5) / scale - 0.5
        left = int(np.floor(src))
        for k in range(left - 1, left + 3):
            j = -k - 1 if k < 0 else (2 * n - 1 - k if k >= n else k)  # symmetric: [.. 1 0 | 0 1 ..]
            m[i, j] += keys(src - k)
    return m / m.sum(axis=1, keepdims=True)


def test_bicubic_upscale_matches_matlab_reference():
    lr = colourful(10, 12, seed=3)
    out = methods.bicubic_upscale(lr, 3, "pipeline")  # one rounding (MATLAB's 8-bit passes: test_eval_conventions)
    assert out.shape == (30, 36, 3) and out.dtype == np.uint8
    rows, cols = _matlab_upscale_1d_matrix(10, 3), _matlab_upscale_1d_matrix(12, 3)
    reference = np.einsum("ij,jkc,lk->ilc", rows, lr / 255.0, cols)
    expected = np.floor(np.clip(reference, 0, 1) * 255 + 0.5)
    assert np.abs(out.astype(int) - expected).max() <= 1
    assert np.mean(out == expected) > 0.99


def test_model_method_runs_the_model_and_rounds(tiny_models):
    import keras

    model = keras.saving.load_model(tiny_models[0])
    method = methods.model_method(model, "tiny")
    lr = colourful(12, 16)
    out = method.upscale(lr)
    assert method.scale == 2 and out.shape == (24, 32, 3) and out.dtype == np.uint8
    direct = np.asarray(model(lr[None].astype(np.float32) / 255.0))[0]
    assert np.abs(out.astype(float) - np.clip(direct, 0, 1) * 255).max() <= 0.5 + 1e-3


def test_load_methods_names_kinds_and_errors(tiny_models, tmp_path):
    loaded = methods.load_methods([str(p) for p in tiny_models], 2)
    assert [m.name for m in loaded] == ["bicubic", "tiny1", "tiny2"]
    assert [m.kind for m in loaded] == ["bicubic", "file", "file"]
    twice = methods.load_methods([str(tiny_models[0]), str(tiny_models[0])], 2)
    assert len({m.name for m in twice}) == 3
    with pytest.raises(ValueError, match="upscales by 2, but the evaluation scale is 4"):
        methods.load_methods([str(tiny_models[0])], 4)
    with pytest.raises(ValueError, match="realesrgan-x4plus"):  # lists the catalogue
        methods.load_methods(["no-such-model"], 2)
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        methods.load_methods([str(tmp_path / "missing.keras")], 2)


def test_method_names_tell_training_runs_apart():
    assert methods.method_name("realesrgan-x4plus") == "realesrgan-x4plus"
    assert methods.method_name("models/my_finetune.keras") == "my_finetune"
    assert methods.method_name("runs/psnr/generator.keras") == "psnr/generator"
    assert methods.method_name("runs/gan/best_generator.keras") == "gan/best_generator"
    assert methods.method_name("generator.keras") == "generator"
