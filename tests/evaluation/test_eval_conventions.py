"""Published numbers, exactly: MATLAB's 8-bit imresize, and greyscale images scored on their grey values."""

import json

import numpy as np
import pytest
from eval_helpers import colourful

from sr_tf import metrics
from sr_tf.data.resize import imresize_uint8
from sr_tf.evaluation import data, methods, runner
from sr_tf.imageio import write_image


def _matlab_contributions(in_length: int, out_length: int, scale: float):
    """A line-by-line transcription of MATLAB's imresize `contributions` (bicubic, antialiasing on).

    `scale` is MATLAB's: output size / input size (0.25 for a x4 downscale). Returns 1-based indices.
    """

    def cubic(x):
        ax = np.abs(x)
        return (1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1) + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((1 < ax) & (ax <= 2))

    kernel_width = 4.0
    if scale < 1:
        h = lambda x: scale * cubic(scale * x)  # noqa: E731
        kernel_width = kernel_width / scale
    else:
        h = cubic
    x = np.arange(1, out_length + 1, dtype=np.float64)[:, None]
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    p = int(np.ceil(kernel_width)) + 2
    indices = left + np.arange(p)[None, :]
    weights = h(u - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(1, in_length + 1), np.arange(in_length, 0, -1)])
    indices = aux[np.mod(indices.astype(int) - 1, len(aux))]
    return weights, indices


def _matlab_imresize_uint8(image: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB's imresize of a uint8 image: dimension 1 then 2, each pass in double, rounded to uint8."""
    out = image.astype(np.float64)
    for dim in (0, 1):
        n = out.shape[dim]
        weights, indices = _matlab_contributions(n, int(np.ceil(n * scale)), scale)
        moved = np.moveaxis(out, dim, 0)
        resized = np.einsum("ok,ok...->o...", weights, moved[indices - 1])
        out = np.moveaxis(np.clip(np.floor(resized + 0.5), 0, 255), 0, dim)  # uint8 after every pass
    return out.astype(np.uint8)


@pytest.mark.parametrize("shape, factor", [((48, 40, 3), 4), ((37, 29, 3), 3), ((30, 26, 3), 2), ((21, 18), 2)])
def test_imresize_uint8_is_byte_identical_to_matlab(shape, factor):
    rng = np.random.default_rng(sum(shape))
    image = rng.integers(0, 256, shape, dtype=np.uint8)  # noise: every rounding matters
    down = imresize_uint8(image, factor)
    np.testing.assert_array_equal(down, _matlab_imresize_uint8(image, 1 / factor))
    up = imresize_uint8(down, 1 / factor)
    np.testing.assert_array_equal(up, _matlab_imresize_uint8(down, factor))
    assert up.shape[:2] == (down.shape[0] * factor, down.shape[1] * factor)


def test_rounding_after_each_pass_is_what_differs_from_the_pipeline():
    hr = colourful(64, 64, seed=4)
    matlab = data.degrade(hr, 4, convention="matlab")
    pipeline = data.degrade(hr, 4, convention="pipeline")
    differs = np.abs(matlab.astype(int) - pipeline.astype(int))
    assert differs.max() == 1 and differs.any()  # same resize, one rounding apart
    lr = matlab
    assert np.any(methods.bicubic_upscale(lr, 4, "matlab") != methods.bicubic_upscale(lr, 4, "pipeline"))
    with pytest.raises(ValueError, match="convention='octave'"):
        data.degrade(hr, 4, convention="octave")


def _gray_pair(tmp_path, scale=2):
    rng = np.random.default_rng(1)
    gray = np.asarray(colourful(40, 48, seed=2)[..., 1:2])  # [H, W, 1] uint8
    gray = np.clip(gray.astype(int) + rng.integers(-20, 21, gray.shape), 0, 255).astype(np.uint8)
    write_image(tmp_path / "gray.png", gray)
    pairs, _ = data.open_pairs(tmp_path / "gray.png", scale)
    return next(iter(pairs)), gray[..., 0]


def test_gray_hr_scores_its_grey_values(tmp_path):
    pair, gray = _gray_pair(tmp_path)
    assert pair.hr_was_gray and pair.hr.shape == (40, 48, 3)
    sr = methods.bicubic_upscale(pair.lr, 2)  # grey in, grey out: R = G = B
    assert np.array_equal(sr[..., 0], sr[..., 1]) and np.array_equal(sr[..., 0], sr[..., 2])
    scores = runner.score(sr, pair.hr, 2, gray=pair.hr_was_gray)
    direct_psnr = float(metrics.psnr(sr[..., :1], gray[..., None], crop_border=2))
    direct_ssim = float(metrics.ssim(sr[..., :1], gray[..., None], crop_border=2))
    assert scores.psnr_y == pytest.approx(direct_psnr, abs=1e-4)
    assert scores.ssim_y == pytest.approx(direct_ssim, abs=1e-6)
    # the old way, Y (16-235) of the grey-to-RGB copy, is ~20*log10(255/219) = 1.32 dB higher
    old = float(metrics.psnr(sr, pair.hr, crop_border=2, y_channel=True))
    assert old - direct_psnr == pytest.approx(20 * np.log10(255 / 219), abs=0.01)


def test_evaluate_scores_gray_images_on_grey_values(tmp_path):
    pair, gray = _gray_pair(tmp_path)
    evaluation = runner.evaluate([pair], [methods.bicubic_method(2)], crop_size=0, progress=False)
    sr = methods.bicubic_upscale(pair.lr, 2)
    expected = float(metrics.psnr(sr[..., :1], gray[..., None], crop_border=2))
    assert evaluation.images[0].scores["bicubic"].psnr_y == pytest.approx(expected, abs=1e-4)


def test_rgb_images_still_score_on_the_16_235_y(tmp_path):
    hr = colourful(32, 32, seed=5)
    pair = data.EvalPair("c", hr, data.degrade(hr, 2), "c.png", [])
    sr = methods.bicubic_upscale(pair.lr, 2)
    assert not pair.hr_was_gray
    assert runner.score(sr, hr, 2).psnr_y == pytest.approx(float(metrics.psnr(sr, hr, crop_border=2, y_channel=True)))


def test_cli_convention_option(tmp_path, capsys):
    from sr_tf.cli import main

    write_image(tmp_path / "a.png", colourful(32, 32, seed=6))
    for convention in ("matlab", "pipeline"):
        out = tmp_path / convention
        assert main(["evaluate", "--data", str(tmp_path / "a.png"), "--scale", "2", "--out", str(out),
                     "--convention", convention, "--no-html", "--crop-size", "0", "--no-progress"]) == 0
        settings = json.loads((out / "results.json").read_text())["settings"]
        assert settings["convention"] == convention
    with pytest.raises(SystemExit):
        main(["evaluate", "--data", str(tmp_path / "a.png"), "--out", str(tmp_path / "x"), "--convention", "octave"])
