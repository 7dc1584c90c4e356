import numpy as np
import pytest
from eval_helpers import colourful
from PIL import Image

from sr_tf.evaluation import curves, data
from sr_tf.evaluation.runner import Scores


@pytest.fixture(scope="module")
def pair_of_models(tiny_models):
    import keras

    return [keras.saving.load_model(p) for p in tiny_models]


def test_alpha_curve_refuses_different_architectures(pair_of_models):
    from sr_tf.models import SRVGGNetCompact

    other = SRVGGNetCompact(num_feat=4, num_conv=1, upscale=2)
    other(np.zeros((1, 8, 8, 3), np.float32))
    hr = colourful(32, 32)
    pairs = [data.EvalPair("a", hr, data.degrade(hr, 2), "a", [])]
    with pytest.raises(ValueError, match="different architectures"):
        curves.alpha_curve(pairs, pair_of_models[0], other, [0.0, 1.0], progress=False)


def test_alpha_curve_endpoints_equal_the_models(pair_of_models):
    from sr_tf.evaluation import methods, runner

    hr = colourful(32, 32)
    pairs = [data.EvalPair("a", hr, data.degrade(hr, 2), "a", [])]
    points = curves.alpha_curve(pairs, *pair_of_models, [0.0, 0.5, 1.0], progress=False)
    assert [p.alpha for p in points] == [0.0, 0.5, 1.0]
    for point, model in ((points[0], pair_of_models[0]), (points[-1], pair_of_models[1])):
        direct = runner.evaluate(pairs, [methods.model_method(model, "m")], progress=False, crop_size=0)
        assert point.scores.psnr_y == pytest.approx(direct.images[0].scores["m"].psnr_y, abs=1e-4)


def test_parse_alphas():
    assert curves.parse_alphas("0:1:0.25") == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert curves.parse_alphas("0, 0.8,1") == [0.0, 0.8, 1.0]
    for bad in ("0:1:0", "a,b", "0,2", ""):
        with pytest.raises(ValueError, match="alphas"):
            curves.parse_alphas(bad)


def test_nice_ticks_cover_the_range():
    for lo, hi in ((26.31, 28.97), (0.712, 0.834), (30.0, 30.0), (-1.0, 3.0)):
        ticks = curves.nice_ticks(lo, hi)
        assert ticks[0] <= lo and ticks[-1] >= hi and 2 <= len(ticks) <= 8
        steps = np.diff(ticks)
        np.testing.assert_allclose(steps, steps[0], rtol=1e-6)


def test_curve_png_draws_the_series_where_the_values_are(tmp_path):
    # PSNR falls with alpha: the blue (Y) line must sit higher on the left than on the right.
    points = [
        curves.CurvePoint(a, Scores(psnr_rgb=27 - 2 * a, ssim_rgb=0.8 - 0.1 * a, psnr_y=28 - 3 * a, ssim_y=0.82 - 0.1 * a))
        for a in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    path = curves.plot_curve_png(points, tmp_path / "curve.png", title="test")
    image = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert image.shape == (420, 900, 3)
    left_panel = image[:, :450]
    blue = (np.abs(left_panel - np.array(curves._BLUE)).sum(axis=-1) < 40)
    blue[:60] = False  # the legend
    ys, xs = np.nonzero(blue)
    assert len(xs) > 200
    left_y = ys[xs < xs.min() + 20].mean()
    right_y = ys[xs > xs.max() - 20].mean()
    assert left_y < right_y - 100  # 3 dB of a ~4 dB axis over ~330 px
    red = (np.abs(image - np.array(curves._ORANGE)).sum(axis=-1) < 40)
    assert red[:, 450:].sum() > 100  # the RGB series in the SSIM panel too
