import numpy as np
import pytest
from eval_helpers import colourful

from sr_tf import metrics
from sr_tf.evaluation import crops, data, methods, runner


def _pair(name="a", seed=0, size=(32, 40), scale=2):
    hr = colourful(*size, seed=seed)
    return data.EvalPair(name, hr, data.degrade(hr, scale), f"{name}.png", [])


def _oracle(pairs, scale=2):
    """A 'model' that returns the true HR image: PSNR must be +inf."""
    table = {p.lr.tobytes(): p.hr for p in pairs}
    return methods.Method("oracle", "model", "oracle", scale, lambda lr: table.get(lr.tobytes(), np.zeros((lr.shape[0] * scale, lr.shape[1] * scale, 3), np.uint8)))


def _patched_bicubic(y, x, size, scale=2):
    """Bicubic, except a bright square at (y, x): where it differs from the other outputs."""

    def upscale(lr):
        out = methods.bicubic_upscale(lr, scale).copy()
        out[y : y + size, x : x + size] = 255
        return out

    return methods.Method("patched", "model", "patched", scale, upscale)


# --- crops --------------------------------------------------------------------------------------


def test_select_crop_finds_the_planted_region_on_the_lr_grid():
    score = np.zeros((40, 48))
    score[12:20, 24:32] = 1.0
    assert crops.select_crop(score, 8, 4) == crops.CropBox(12, 24, 8)
    score = np.zeros((40, 48))
    score[13:21, 26:34] = 1.0  # not aligned: the best aligned window still covers most of it
    box = crops.select_crop(score, 8, 4)
    assert box.y % 4 == 0 and box.x % 4 == 0 and box.size == 8
    assert score[box.y : box.y + 8, box.x : box.x + 8].sum() >= 0.5 * score.sum()


def test_select_crop_avoids_the_border_and_shrinks_to_fit():
    score = np.zeros((40, 48))
    score[:8, :8] = 1.0
    box = crops.select_crop(score, 8, 4, border=4)
    assert box.y >= 4 and box.x >= 4
    assert crops.select_crop(np.ones((12, 16)), 100, 4).size == 12


def test_crop_panels_are_aligned():
    scale = 3
    lr = colourful(10, 12)
    hr = np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1)  # HR = LR by pixel repetition
    box = crops.CropBox(6, 9, 12)
    panels = crops.crop_panels(lr, {"m": hr}, hr, box, scale)
    assert list(panels) == ["LR", "m", "HR"]
    np.testing.assert_array_equal(panels["LR"], panels["HR"])
    np.testing.assert_array_equal(panels["HR"], hr[6:18, 9:21])


def test_disagreement_map():
    a = colourful(8, 8)
    b = a.copy()
    b[3, 5] = 255 - b[3, 5]
    d = crops.disagreement_map([a, a, b])
    assert d[3, 5] > 0 and np.count_nonzero(d) == 1
    with pytest.raises(ValueError, match="shape"):
        crops.disagreement_map([a, a[:4]])


# --- runner -------------------------------------------------------------------------------------


def test_evaluate_scores_follow_the_metrics_convention_and_identical_is_inf():
    pairs = [_pair("a", 0), _pair("b", 1)]
    seen = []
    evaluation = runner.evaluate(
        pairs, [methods.bicubic_method(2), _oracle(pairs)], crop_size=16, progress=False,
        on_image=lambda result, pair: seen.append((result.name, pair.name)),
    )
    assert seen == [("a", "a"), ("b", "b")]
    assert evaluation.crop_border == 2 and evaluation.method_names == ["bicubic", "oracle"]
    first = evaluation.images[0].scores
    assert first["oracle"].psnr_y == np.inf and first["oracle"].psnr_rgb == np.inf
    assert first["oracle"].ssim_y == pytest.approx(1.0)
    sr = methods.bicubic_upscale(pairs[0].lr, 2)
    assert first["bicubic"].psnr_y == pytest.approx(float(metrics.psnr(sr, pairs[0].hr, crop_border=2, y_channel=True)))
    assert first["bicubic"].ssim_rgb == pytest.approx(float(metrics.ssim(sr, pairs[0].hr, crop_border=2)))
    assert first["bicubic"].seconds is not None and first["bicubic"].seconds >= 0
    means = evaluation.means()
    assert means["oracle"].psnr_y == np.inf
    assert means["bicubic"].psnr_y == pytest.approx(np.mean([im.scores["bicubic"].psnr_y for im in evaluation.images]))


def test_crop_is_where_models_differ():
    pair = _pair(size=(48, 64))
    evaluation = runner.evaluate(
        [pair], [methods.bicubic_method(2), _oracle([pair]), _patched_bicubic(24, 40, 8)],
        crop_size=16, progress=False,
    )
    image = evaluation.images[0]
    box = image.crop
    assert box.y <= 24 and box.y + 16 >= 32 and box.x <= 40 and box.x + 16 >= 48
    assert list(image.panels) == ["LR", "bicubic", "oracle", "patched", "HR"]
    np.testing.assert_array_equal(image.panels["oracle"], image.panels["HR"])


def test_evaluate_errors():
    pair = _pair()
    bad = methods.Method("bad", "model", "bad", 2, lambda lr: np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r"'bad' returned \(4, 4, 3\)"):
        runner.evaluate([pair], [bad], progress=False)
    with pytest.raises(ValueError, match="same scale"):
        runner.evaluate([pair], [methods.bicubic_method(2), methods.bicubic_method(4)], progress=False)
    with pytest.raises(ValueError, match="no images"):
        runner.evaluate([], [methods.bicubic_method(2)], progress=False)


def test_duplicate_names_are_kept_apart():
    evaluation = runner.evaluate([_pair("x", 0), _pair("x", 1)], [methods.bicubic_method(2)], progress=False)
    assert [im.name for im in evaluation.images] == ["x", "x (2)"]
