"""Bicubic parity with MATLAB's imresize (independent NumPy reference and hand-computed weights)."""

import numpy as np
import pytest
import tensorflow as tf
from data_helpers import fspecial_gaussian, imfilter_replicate, matlab_imresize

from sr_tf.data.degradations import bicubic_downscale, blur_bicubic

TOLERANCE = 0.5 / 255  # the acceptance bound; the implementation is ~1e-4/255 off


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("shape", [(24, 36), (17, 23), (401, 19)])  # 401 rows: the banded path for large images
def test_bicubic_matches_matlab_reference(scale, shape):
    rng = np.random.default_rng(scale)
    image = rng.random((*shape, 3))  # noise is the hardest case for border handling
    expected = matlab_imresize(image, scale)
    got = bicubic_downscale(tf.constant(image, tf.float32), scale).numpy()
    assert got.shape == expected.shape == (-(-shape[0] // scale), -(-shape[1] // scale), 3)
    assert np.abs(got - expected).max() < TOLERANCE


def test_bicubic_batch_equals_single_images():
    rng = np.random.default_rng(0)
    batch = rng.random((3, 16, 20, 3)).astype(np.float32)
    together = bicubic_downscale(tf.constant(batch), 4).numpy()
    for i in range(3):
        np.testing.assert_allclose(together[i], matlab_imresize(batch[i].astype(np.float64), 4), atol=1e-5)


def test_bicubic_x2_interior_weights_by_hand():
    # Antialiased x2 taps, by hand: cubic(t/2)/2 at t = +-0.5, +-1.5, +-2.5, +-3.5 is
    # 0.43359375, 0.11328125, -0.03515625, -0.01171875. Output j (0-based) is centred on input
    # 2j + 0.5, so an impulse at column 15 shows up in outputs 6..9 with these weights.
    image = np.zeros((8, 32, 1), np.float32)
    image[:, 15] = 1.0
    out = bicubic_downscale(tf.constant(image), 2).numpy()[2, :, 0]
    expected = np.zeros(16)
    expected[6:10] = [-0.03515625, 0.43359375, 0.11328125, -0.01171875]
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_bicubic_keeps_constants_and_rejects_bad_input():
    const = tf.fill([10, 14, 3], 0.25)
    np.testing.assert_allclose(bicubic_downscale(const, 3).numpy(), 0.25, atol=1e-6)
    with pytest.raises(TypeError, match="float32"):
        bicubic_downscale(tf.zeros([8, 8, 3], tf.uint8), 2)
    with pytest.raises(ValueError, match="scale"):
        bicubic_downscale(const, 0)


@pytest.mark.parametrize("scale", [2, 3])
def test_blur_bicubic_matches_imfilter_then_imresize(scale):
    rng = np.random.default_rng(1)
    image = rng.random((18, 21, 3))
    expected = matlab_imresize(imfilter_replicate(image, fspecial_gaussian(7, 1.6)), scale)
    got = blur_bicubic(tf.constant(image, tf.float32), scale, sigma=1.6, kernel_size=7).numpy()
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-5
