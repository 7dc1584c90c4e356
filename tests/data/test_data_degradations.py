"""Real-ESRGAN degradation pieces: kernels, filtering, noise, and the whole second-order model."""

import math

import numpy as np
import pytest
import tensorflow as tf

from sr_tf.data import kernels as K
from sr_tf.data.degradations import (
    RealESRGANConfig,
    add_gaussian_noise,
    add_poisson_noise,
    degrade,
    realesrgan,
    usm_sharp,
)

PROBS = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)


def test_random_kernels_normalised_symmetric_and_sized():
    kernels = K.random_kernels(tf.constant([3, 4]), 64, PROBS, (0.2, 3.0), (0.5, 4.0), (1.0, 2.0), 0.1).numpy()
    assert kernels.shape == (64, 21, 21)
    np.testing.assert_allclose(kernels.sum(axis=(1, 2)), 1.0, atol=1e-5)
    np.testing.assert_allclose(kernels, kernels[:, ::-1, ::-1], atol=1e-6)  # half-turn symmetric
    # Kernel sizes 7..21: the outermost ring is zero for sizes < 21, so some kernels have it empty.
    ring = np.abs(kernels[:, 0, :]).sum(axis=1)
    assert (ring == 0).any() and (ring > 0).any()


def test_isotropic_gaussian_kernel_by_formula():
    sigma = 1.7
    got = K.gaussian_kernels(tf.constant([sigma]), tf.constant([sigma]), tf.constant([0.3]), size=9).numpy()[0]
    ax = np.arange(9) - 4.0
    yy, xx = np.meshgrid(ax, ax, indexing="ij")
    expected = np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
    np.testing.assert_allclose(got, expected / expected.sum(), atol=1e-6)


def test_anisotropic_gaussian_rotates():
    # sigma_x = 3, sigma_y = 1 along the axes; a quarter turn swaps the long axis.
    a = K.gaussian_kernels(tf.constant([3.0, 3.0]), tf.constant([1.0, 1.0]), tf.constant([0.0, math.pi / 2]), 21).numpy()
    np.testing.assert_allclose(a[1], a[0].T, atol=1e-6)
    assert a[0][10, 13] > a[0][13, 10]  # wide along x (columns) before rotation


def test_sinc_kernel_is_a_low_pass_filter():
    cutoff = math.pi / 3
    k = K.sinc_kernels(tf.constant([cutoff]), tf.constant([21]), 21).numpy()[0]
    response = np.abs(np.fft.fftshift(np.fft.fft2(k, s=(64, 64))))
    freq = np.fft.fftshift(np.fft.fftfreq(64)) * 2 * math.pi
    fy, fx = np.meshgrid(freq, freq, indexing="ij")
    radius = np.hypot(fy, fx)
    assert response[radius < 0.7 * cutoff].min() > 0.8
    assert response[radius > 1.5 * cutoff].max() < 0.2


def test_filter2d_equals_direct_reflect_convolution():
    rng = np.random.default_rng(0)
    images = rng.random((2, 13, 17, 3)).astype(np.float32)
    kernels = rng.random((2, 5, 5)).astype(np.float32)
    kernels = kernels + kernels[:, ::-1, ::-1]
    kernels /= kernels.sum(axis=(1, 2), keepdims=True)
    got = K.filter2d(tf.constant(images), tf.constant(kernels)).numpy()
    for n in range(2):
        padded = np.pad(images[n], ((2, 2), (2, 2), (0, 0)), mode="reflect")
        expected = sum(kernels[n, i, j] * padded[i : i + 13, j : j + 17] for i in range(5) for j in range(5))
        np.testing.assert_allclose(got[n], expected, atol=1e-5)


def test_reflect_pad_works_beyond_the_image_size():
    planes = tf.reshape(tf.range(3, dtype=tf.float32), [1, 1, 1, 3])  # a 1x3 image: a b c
    out = K.reflect_pad_planes(planes, 4).numpy()[0, 0, 4]
    np.testing.assert_array_equal(out, [0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2])


def test_usm_sharpens_an_edge_and_keeps_flat_areas():
    image = np.full((1, 32, 32, 3), 0.3, np.float32)
    image[:, :, 16:] = 0.7
    out = usm_sharp(tf.constant(image)).numpy()
    assert out[0, 16, 15, 0] < 0.3 - 0.01 and out[0, 16, 16, 0] > 0.7 + 0.01
    flat = usm_sharp(tf.fill([1, 16, 16, 3], 0.5)).numpy()
    np.testing.assert_allclose(flat, 0.5, atol=1e-6)


def test_gaussian_noise_level_and_gray_noise():
    image = tf.fill([2, 64, 64, 3], 0.5)
    noisy = add_gaussian_noise(image, tf.constant([1, 2]), sigma_range=(10.0, 10.0), gray_prob=0.0).numpy()
    assert abs((noisy - 0.5).std() * 255 - 10.0) < 0.5
    gray = add_gaussian_noise(image, tf.constant([1, 2]), sigma_range=(10.0, 10.0), gray_prob=1.0).numpy()
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])


def test_poisson_noise_variance_follows_basicsr_formula():
    # A ramp with all 256 levels: vals = 256, noise = (Poisson(x * 256) / 256 - x) * scale,
    # so its variance is x / 256 (scale 1); the mean stays x.
    ramp = np.tile(np.arange(256, dtype=np.float32) / 255.0, (256, 1))
    image = np.stack([ramp] * 3, axis=-1)[None] * 0.6 + 0.2  # away from the clipping bounds
    image = np.round(image * 255) / 255
    noisy = add_poisson_noise(tf.constant(image, tf.float32), tf.constant([5, 6]), scale_range=(1.0, 1.0), gray_prob=0.0).numpy()
    noise = noisy - image
    assert abs(noise.mean()) < 1e-3
    assert noise.var() == pytest.approx(image.mean() / 256, rel=0.05)
    gray = add_poisson_noise(tf.constant(image, tf.float32), tf.constant([5, 6]), scale_range=(1.0, 1.0), gray_prob=1.0).numpy()
    np.testing.assert_array_equal(gray[..., 0] - image[..., 0], gray[..., 2] - image[..., 2])  # one luma noise plane
    assert (gray - image).var() == pytest.approx(image.mean() / 256, rel=0.05)


def test_realesrgan_shapes_levels_and_determinism():
    rng = np.random.default_rng(0)
    hr = tf.constant(rng.random((3, 32, 32, 3)), tf.float32)
    a = realesrgan(hr, 4, tf.constant([7, 8])).numpy()
    b = realesrgan(hr, 4, tf.constant([7, 8])).numpy()
    c = realesrgan(hr, 4, tf.constant([7, 9])).numpy()
    assert a.shape == (3, 8, 8, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= 1
    np.testing.assert_allclose(a * 255, np.round(a * 255), atol=1e-4)
    single = realesrgan(hr[0], 2, tf.constant([1, 1]))
    assert single.shape == (16, 16, 3)


def test_realesrgan_keeps_content_in_place():
    # A blob at HR pixel (31.5, 27.5) must land at LR ((31.5 + 0.5) / 4 - 0.5, ...) = (7.5, 6.5):
    # kernels are symmetric and resizes use pixel centres, so no step may shift the image.
    # (A one-HR-pixel shift anywhere moves the centroid by >= 0.25 LR pixels on average.)
    y, x = np.mgrid[0:64, 0:64]
    blob = np.exp(-((y - 31.5) ** 2 + (x - 27.5) ** 2) / (2 * 3.0**2)).astype(np.float32)
    hr = tf.constant(np.repeat(np.stack([blob] * 3, -1)[None] * 0.8 + 0.1, 8, axis=0))
    quiet = RealESRGANConfig(noise_range=(0, 0), noise_range2=(0, 0), poisson_scale_range=(0, 0),
                             poisson_scale_range2=(0, 0), jpeg_range=(95, 95), jpeg_range2=(95, 95))
    ly, lx = np.mgrid[0:16, 0:16]
    errors = []
    for seed in ([3, 1], [4, 1]):
        for image in realesrgan(hr, 4, tf.constant(seed), quiet).numpy().mean(axis=-1):
            weight = np.clip(image - 0.1, 0, None)
            errors.append([(weight * ly).sum() / weight.sum() - 7.5, (weight * lx).sum() / weight.sum() - 6.5])
    errors = np.array(errors)
    assert np.abs(errors.mean(axis=0)).max() < 0.05
    assert np.abs(errors).max() < 0.25


def test_degrade_dispatch_and_errors():
    image = tf.random.stateless_uniform([8, 8, 3], [0, 0])
    assert degrade(image, "bicubic", 2).shape == (4, 4, 3)
    assert degrade(image, "blur-bicubic", 2, sigma=1.0, kernel_size=5).shape == (4, 4, 3)
    with pytest.raises(ValueError, match="seed"):
        degrade(image, "realesrgan", 2)
    with pytest.raises(ValueError, match="Unknown degradation"):
        degrade(image, "nearest", 2)
    with pytest.raises(ValueError, match="resize_prob"):
        RealESRGANConfig(resize_prob=(0.5, 0.5))
    with pytest.raises(ValueError, match="noise_range"):
        RealESRGANConfig(noise_range=(5.0, 1.0))
