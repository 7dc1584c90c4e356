import numpy as np
import pytest
import tensorflow as tf

from sr_tf.models import torch_to_tf_shuffle_permutation
from sr_tf.models.resized import ncnn_bicubic_resize


def torch_pixel_shuffle(x: np.ndarray, r: int) -> np.ndarray:
    """PyTorch's nn.PixelShuffle written from its definition, on NHWC arrays."""
    n, h, w, crr = x.shape
    c = crr // (r * r)
    out = np.empty((n, h * r, w * r, c), x.dtype)
    for ch in range(c):
        for i in range(r):
            for j in range(r):
                out[:, i::r, j::r, ch] = x[..., ch * r * r + i * r + j]
    return out


def test_permutation_maps_torch_shuffle_to_depth_to_space():
    rng = np.random.default_rng(0)
    for channels, r in [(3, 2), (3, 3), (3, 4), (5, 2)]:
        x = rng.random((2, 3, 4, channels * r * r)).astype(np.float32)
        perm = torch_to_tf_shuffle_permutation(channels, r)
        ours = tf.nn.depth_to_space(x[..., perm], r).numpy()
        np.testing.assert_array_equal(ours, torch_pixel_shuffle(x, r))


def reference_resize_matrix(in_size: int, out_size: int, a: float = -0.75) -> np.ndarray:
    """Dense [out, in] matrix: cubic convolution (Keys, a=-0.75), half-pixel centres, clamped borders."""
    m = np.zeros((out_size, in_size))
    for d in range(out_size):
        s = (d + 0.5) * in_size / out_size - 0.5
        for k in range(int(np.floor(s)) - 1, int(np.floor(s)) + 3):
            t = abs(s - k)
            wt = (a + 2) * t**3 - (a + 3) * t**2 + 1 if t <= 1 else a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a
            m[d, min(max(k, 0), in_size - 1)] += wt
    return m


def test_ncnn_bicubic_matches_dense_reference():
    rng = np.random.default_rng(1)
    x = rng.random((1, 12, 20, 3)).astype(np.float32)
    for out_h, out_w in [(6, 10), (9, 15), (24, 7)]:
        expected = np.einsum("ih,jw,nhwc->nijc", reference_resize_matrix(12, out_h), reference_resize_matrix(20, out_w), x)
        got = ncnn_bicubic_resize(tf.constant(x), tf.constant([out_h, out_w])).numpy()
        np.testing.assert_allclose(got, expected, atol=2e-6)


@pytest.mark.parametrize("size,in_ch,out_ch,factor", [(9, 32, 3, 2), (3, 8, 4, 2), (5, 4, 3, 3), (1, 4, 2, 2), (9, 6, 3, 4)])
def test_conv_after_shuffle_equals_the_conv_of_the_shuffled_tensor(size, in_ch, out_ch, factor):
    from sr_tf.models.layers import conv_after_shuffle

    rng = np.random.default_rng(size + factor)
    x = rng.normal(size=(2, 5, 3, in_ch * factor * factor)).astype(np.float32)
    kernel = rng.normal(size=(size, size, in_ch, out_ch)).astype(np.float32)
    bias = rng.normal(size=(out_ch,)).astype(np.float32)
    expected = tf.nn.conv2d(tf.nn.depth_to_space(x, factor), kernel, 1, "SAME") + bias
    got = conv_after_shuffle(tf.constant(x), tf.constant(kernel), tf.constant(bias), factor)
    assert got.shape == expected.shape
    scale = np.sqrt(size * size * in_ch)  # typical magnitude of a sum of that many unit products
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5 * scale)
