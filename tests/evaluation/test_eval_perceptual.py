"""NIQE and LPIPS columns in sr-tf evaluate's results (the metrics themselves: tests/perceptual)."""

import json

import numpy as np
import pytest
from eval_helpers import colourful
from PIL import Image

from sr_tf.cli import main
from sr_tf.evaluation import data, methods, report, runner
from sr_tf.perceptual.lpips import VGG16_CONVS


def random_vgg16(seed: int = 0) -> dict[str, np.ndarray]:
    """A torchvision-layout VGG16 state dict with He-scaled random weights (no ImageNet download here)."""
    rng = np.random.default_rng(seed)
    state, channels = {}, 3
    for index, out in VGG16_CONVS:
        state[f"features.{index}.weight"] = rng.normal(0, np.sqrt(2 / (9 * channels)), (out, channels, 3, 3)).astype(np.float32)
        state[f"features.{index}.bias"] = rng.normal(0, 0.01, out).astype(np.float32)
        channels = out
    return state


def need_lpips_weights() -> None:
    """Skips without the lpips package (only its vgg.pth is read: importing it would need torchvision)."""
    from sr_tf.perceptual import linear_weights

    try:
        linear_weights()
    except FileNotFoundError as e:
        pytest.skip(str(e))


def textured(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 14, (height, width, 3))
    return np.clip(colourful(height, width, seed).astype(np.float64) + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def scorer():
    need_lpips_weights()
    return runner.PerceptualScorer(("niqe", "lpips"), lpips_vgg=random_vgg16())


def test_lpips_and_niqe_columns_rank_lower_as_better(scorer, tmp_path):
    from sr_tf.perceptual import pristine_params

    try:
        pristine_params()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    scale = 2
    hrs = {"big": textured(200, 104, seed=1), "small": colourful(48, 64, seed=2)}  # NIQE needs two 96x96 blocks
    pairs = [data.EvalPair(n, hr, data.degrade(hr, scale), f"{n}.png") for n, hr in hrs.items()]
    table = {p.lr.tobytes(): p.hr for p in pairs}

    def truth(lr):
        return table.get(lr.tobytes(), np.zeros((lr.shape[0] * scale, lr.shape[1] * scale, 3), np.uint8))

    oracle = methods.Method("oracle", "model", "oracle", scale, truth)
    evaluation = runner.evaluate(pairs, [methods.bicubic_method(scale), oracle], crop_size=0, progress=False,
                                 perceptual=scorer)
    big, small = evaluation.images
    assert big.scores["oracle"].lpips == 0.0 < big.scores["bicubic"].lpips
    assert small.scores["bicubic"].niqe is None and small.scores["bicubic"].lpips > 0
    from sr_tf.perceptual import niqe

    assert big.scores["oracle"].niqe == niqe(hrs["big"], crop_border=scale)
    means = evaluation.means()
    assert means["oracle"].niqe == big.scores["oracle"].niqe  # the mean over the images that have it
    assert means["bicubic"].lpips == pytest.approx((big.scores["bicubic"].lpips + small.scores["bicubic"].lpips) / 2)

    written = report.write_report(tmp_path, evaluation)
    loaded = json.loads(written.results_json.read_text())
    assert loaded["mean"]["oracle"]["lpips"] == 0.0
    assert "niqe" not in loaded["images"][1]["scores"]["bicubic"]  # too small: not measured
    assert "NIQE (no reference; lower is better)" in loaded["convention"]
    assert loaded["settings"]["perceptual"]["lpips"]["backbone"] == "torchvision VGG16"
    text = written.markdown.read_text()
    assert "| method | PSNR-Y (dB) | SSIM-Y | PSNR-RGB (dB) | SSIM-RGB | NIQE ↓ | LPIPS ↓ | s / image |" in text
    oracle_row = next(line for line in text.splitlines() if line.startswith("| oracle |"))
    bicubic_row = next(line for line in text.splitlines() if line.startswith("| bicubic |"))
    assert oracle_row.split(" | ")[6] == "**0.0000**" and "**" not in bicubic_row.split(" | ")[6]
    best_niqe = min(means["oracle"].niqe, means["bicubic"].niqe)
    assert f"**{best_niqe:.3f}**" in text
    assert "## Per image (NIQE ↓ / LPIPS ↓)" in text and "| small | - / " in text
    html = written.html.read_text()
    assert "<th>NIQE ↓</th><th>LPIPS ↓</th>" in html and '<td class="best">0.0000</td>' in html


def test_evaluate_cli_perceptual(tmp_path, capsys):
    need_lpips_weights()
    from safetensors.numpy import save_file

    from sr_tf.perceptual import niqe_available

    if not niqe_available():
        pytest.skip("BasicSR's source archive is not in the cache folder")
    folder = tmp_path / "hr"
    folder.mkdir()
    Image.fromarray(textured(200, 104, seed=3)).save(folder / "photo.png")
    save_file(random_vgg16(1), str(tmp_path / "vgg16.safetensors"))
    out = tmp_path / "report"
    code = main(["evaluate", "--data", str(folder), "--scale", "2", "--out", str(out), "--crop-size", "0",
                 "--perceptual", "niqe", "lpips", "--lpips-vgg", str(tmp_path / "vgg16.safetensors"), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "mean PSNR-Y / SSIM-Y / NIQE / LPIPS" in printed
    mean = json.loads((out / "results.json").read_text())["mean"]["bicubic"]
    assert 0 < mean["niqe"] < 100 and 0 < mean["lpips"]
    assert "NIQE ↓" in (out / "report.html").read_text()


def test_unknown_or_unavailable_metrics_fail_before_any_model_runs(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--perceptual", "fid"])
    assert "invalid choice: 'fid'" in capsys.readouterr().err
    monkeypatch.setenv("SR_TF_CACHE_DIR", str(tmp_path / "empty"))
    Image.fromarray(colourful(32, 32)).save(tmp_path / "a.png")
    code = main(["evaluate", "--data", str(tmp_path / "a.png"), "--out", str(tmp_path / "r"), "--perceptual", "niqe",
                 "--models", "no-such-model"])
    assert code == 2
    assert "pip download --no-deps basicsr==1.4.2" in capsys.readouterr().err
