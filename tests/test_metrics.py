"""PSNR / SSIM / Y conversion against hand-computed values, tf.image and an independent NumPy SSIM."""

import math

import numpy as np
import pytest
import tensorflow as tf
from numpy.lib.stride_tricks import sliding_window_view

from sr_tf import metrics


def _pair(shape=(2, 24, 28, 3), noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.random(shape).astype(np.float32)
    b = np.clip(a + rng.normal(0.0, noise, shape), 0.0, 1.0).astype(np.float32)
    return a, b


def _reference_ssim_channel(x, y):
    """SSIM of two [H, W] float64 images on the 8-bit scale with a full 2-D window (no separability)."""
    coords = np.arange(11) - 5.0
    g = np.exp(-(coords**2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()

    def filt(img):
        return np.einsum("ijkl,kl->ij", sliding_window_view(img, (11, 11)), window)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = filt(x), filt(y)
    vx, vy, cxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
    smap = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return smap.mean()


def _reference_y(rgb01):
    r, g, b = rgb01[..., 0], rgb01[..., 1], rgb01[..., 2]
    return 16.0 + 65.481 * r + 128.553 * g + 24.966 * b


# --- Y conversion -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rgb, expected",
    [
        ((1.0, 1.0, 1.0), 235.0),
        ((0.0, 0.0, 0.0), 16.0),
        ((1.0, 0.0, 0.0), 16.0 + 65.481),
        ((0.0, 1.0, 0.0), 16.0 + 128.553),
        ((0.0, 0.0, 1.0), 16.0 + 24.966),
        ((0.5, 0.5, 0.5), 16.0 + 0.5 * 219.0),
    ],
)
def test_rgb_to_y_bt601_reference_values(rgb, expected):
    y = metrics.rgb_to_y(np.array([[rgb]], np.float64))
    assert y.shape == (1, 1, 1)
    np.testing.assert_allclose(y.numpy()[0, 0, 0], expected, atol=1e-9)


def test_rgb_to_y_uint8_uses_255_range():
    y = metrics.rgb_to_y(np.array([[[255, 255, 255], [255, 0, 0]]], np.uint8))
    np.testing.assert_allclose(y.numpy()[0, :, 0], [235.0, 81.481], atol=1e-4)


def test_rgb_to_y_rejects_non_rgb():
    with pytest.raises(ValueError, match="3 channels"):
        metrics.rgb_to_y(np.zeros((4, 4, 1), np.float32))


# --- PSNR ---------------------------------------------------------------------------------------


def test_psnr_hand_computed_constant_offset():
    a = np.full((8, 8, 3), 0.5, np.float32)
    b = a + np.float32(0.1)  # mse = 0.01 of a peak of 1 -> 10 * log10(1 / 0.01) = 20 dB
    assert metrics.psnr(a, b).numpy() == pytest.approx(20.0, abs=1e-4)


def test_psnr_hand_computed_single_pixel_uint8():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[1, 2, 0] = 255  # mse = 255^2 / 48 -> PSNR = 10 * log10(48)
    assert metrics.psnr(a, b).numpy() == pytest.approx(10 * math.log10(48), abs=1e-5)


def test_psnr_max_val_and_dtype_defaults_agree():
    a, b = _pair((16, 16, 3))
    a8, b8 = np.round(a * 255).astype(np.uint8), np.round(b * 255).astype(np.uint8)
    a16, b16 = a8.astype(np.uint16) * 257, b8.astype(np.uint16) * 257
    expected = metrics.psnr(a8, b8).numpy()
    assert metrics.psnr(a8.astype(np.float32), b8.astype(np.float32), max_val=255).numpy() == pytest.approx(expected, abs=1e-5)
    assert metrics.psnr(a8 / 255.0, b8 / 255.0).numpy() == pytest.approx(expected, abs=1e-5)
    assert metrics.psnr(a16, b16).numpy() == pytest.approx(expected, abs=1e-5)


def test_psnr_matches_tf_image_psnr_rgb():
    a, b = _pair()
    ours = metrics.psnr(a, b).numpy()
    theirs = tf.image.psnr(a, b, max_val=1.0).numpy()
    assert ours.shape == (2,)
    np.testing.assert_allclose(ours, theirs, atol=1e-3)


def test_psnr_y_and_crop_match_numpy_reference():
    a, b = _pair((20, 22, 3))
    ya, yb = _reference_y(a.astype(np.float64)), _reference_y(b.astype(np.float64))
    ya, yb = ya[3:-3, 3:-3], yb[3:-3, 3:-3]
    expected = 10 * math.log10(255.0**2 / np.mean((ya - yb) ** 2))
    got = metrics.psnr(a, b, crop_border=3, y_channel=True).numpy()
    assert got == pytest.approx(expected, abs=1e-4)


def test_crop_border_ignores_errors_in_the_border():
    a = np.zeros((12, 12, 3), np.float32)
    b = a.copy()
    b[:2] = 1.0
    b[:, -2:] = 1.0
    assert np.isfinite(metrics.psnr(a, b).numpy())
    assert metrics.psnr(a, b, crop_border=2).numpy() == np.inf


def test_identical_images_give_inf_psnr_and_unit_ssim():
    a, _ = _pair()
    p = metrics.psnr(a, a).numpy()
    assert np.all(np.isposinf(p)), p
    assert metrics.psnr(a, a, y_channel=True, crop_border=4).numpy().tolist() == [np.inf, np.inf]
    np.testing.assert_allclose(metrics.ssim(a, a).numpy(), 1.0, atol=1e-6)


# --- SSIM ---------------------------------------------------------------------------------------


def test_ssim_hand_computed_constant_images():
    # Constant images: all variances are 0, so SSIM = (2 p q + C1) / (p^2 + q^2 + C1).
    a = np.full((16, 16, 3), 100, np.uint8)
    b = np.full((16, 16, 3), 110, np.uint8)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)
    assert metrics.ssim(a, b).numpy() == pytest.approx(expected, abs=1e-6)


def test_ssim_matches_tf_image_ssim_rgb_without_crop():
    # tf.image.ssim: same 11x11 sigma-1.5 Gaussian, 'valid' filtering, K1/K2, mean over channels.
    a, b = _pair((3, 32, 36, 3), noise=0.1)
    ours = metrics.ssim(a, b).numpy()
    theirs = tf.image.ssim(a, b, max_val=1.0).numpy()
    np.testing.assert_allclose(ours, theirs, atol=2e-5)


@pytest.mark.parametrize("y_channel, crop", [(False, 0), (False, 4), (True, 0), (True, 4)])
def test_ssim_matches_independent_numpy_reference(y_channel, crop):
    a, b = _pair((30, 33, 3), noise=0.08, seed=3)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if y_channel:
        planes = [(_reference_y(a64), _reference_y(b64))]
    else:
        planes = [(a64[..., c] * 255, b64[..., c] * 255) for c in range(3)]
    if crop:
        planes = [(x[crop:-crop, crop:-crop], y[crop:-crop, crop:-crop]) for x, y in planes]
    expected = np.mean([_reference_ssim_channel(x, y) for x, y in planes])
    got = metrics.ssim(a, b, y_channel=y_channel, crop_border=crop).numpy()
    assert got == pytest.approx(expected, abs=1e-6)


def test_ssim_grayscale_single_channel():
    a, b = _pair((20, 20, 1))
    expected = _reference_ssim_channel(a[..., 0].astype(np.float64) * 255, b[..., 0].astype(np.float64) * 255)
    assert metrics.ssim(a, b).numpy() == pytest.approx(expected, abs=1e-6)


# --- errors and graph mode ----------------------------------------------------------------------


@pytest.mark.parametrize("fn", [metrics.psnr, metrics.ssim])
def test_mismatched_shapes_name_both(fn):
    a = np.zeros((16, 16, 3), np.float32)
    b = np.zeros((16, 18, 3), np.float32)
    with pytest.raises(ValueError, match=r"\(16, 16, 3\).*\(16, 18, 3\)"):
        fn(a, b)


@pytest.mark.parametrize("fn", [metrics.psnr, metrics.ssim])
def test_other_bad_inputs(fn):
    a = np.zeros((16, 16, 3), np.float32)
    with pytest.raises(ValueError, match="dtype"):
        fn(a, (a * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="crop_border"):
        fn(a, a, crop_border=8)
    with pytest.raises(ValueError, match="y_channel"):
        fn(a[..., :1], a[..., :1], y_channel=True)
    with pytest.raises(ValueError, match="max_val"):
        fn(a.astype(np.int32), a.astype(np.int32))
    with pytest.raises(ValueError, match=r"\[H, W, C\]"):
        fn(a[..., 0], a[..., 0])


def test_mixed_float_dtypes_are_accepted():
    a, b = _pair((16, 16, 3))
    expected = metrics.psnr(a, b).numpy()
    assert metrics.psnr(a.astype(np.float16), b).numpy() == pytest.approx(expected, abs=0.05)
    assert metrics.psnr(a.astype(np.float64), b).numpy() == pytest.approx(expected, abs=1e-5)


def test_ssim_too_small_after_crop():
    a = np.zeros((14, 14, 3), np.float32)
    with pytest.raises(ValueError, match="too small"):
        metrics.ssim(a, a, crop_border=2)


def test_inside_tf_function_with_unknown_shapes():
    a, b = _pair((2, 24, 28, 3))
    spec = tf.TensorSpec([None, None, None, 3], tf.float32)

    @tf.function(input_signature=[spec, spec])
    def both(x, y):
        return (
            metrics.psnr(x, y, crop_border=4, y_channel=True),
            metrics.ssim(x, y, crop_border=4, y_channel=True),
        )

    p, s = both(a, b)
    assert p.shape == (2,) and s.shape == (2,)
    np.testing.assert_allclose(p.numpy(), metrics.psnr(a, b, crop_border=4, y_channel=True).numpy(), rtol=1e-6)
    np.testing.assert_allclose(s.numpy(), metrics.ssim(a, b, crop_border=4, y_channel=True).numpy(), rtol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match="differ in shape"):
        both(a, b[:, :, :20])


# Sharma, Wu and Dalal (2005), "The CIEDE2000 color-difference formula", Table 1: L1 a1 b1 L2 a2 b2 dE00
SHARMA_PAIRS = (
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615),
    (50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
)


def test_ciede2000_reproduces_sharma_wu_dalals_34_test_pairs():
    pairs = np.array(SHARMA_PAIRS)
    got = metrics.ciede2000(pairs[:, :3], pairs[:, 3:6])
    np.testing.assert_allclose(got, pairs[:, 6], atol=5e-5)  # the table has 4 decimals
    np.testing.assert_allclose(metrics.ciede2000(pairs[:, 3:6], pairs[:, :3]), got, atol=1e-12)  # symmetric


def test_rgb_to_lab_of_the_srgb_primaries_and_a_mean_over_pixels():
    # CIELAB (D65) of sRGB red, green, blue, white, as published (e.g. Lindbloom's calculator)
    rgb = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]], np.uint8)
    want = [[53.2408, 80.0925, 67.2032], [87.7347, -86.1827, 83.1793], [32.2970, 79.1875, -107.8602], [100, 0, 0]]
    np.testing.assert_allclose(metrics.rgb_to_lab(rgb), want, atol=0.006)
    image = np.random.default_rng(0).integers(0, 256, (2, 5, 6, 3), dtype=np.uint8)
    shifted = np.clip(image.astype(int) + [6, 0, 0], 0, 255).astype(np.uint8)
    mean = metrics.mean_ciede2000(image, shifted)
    assert mean.shape == (2,) and np.all(mean > 0.5)
    assert metrics.mean_ciede2000(image[0], image[0]) == 0.0
