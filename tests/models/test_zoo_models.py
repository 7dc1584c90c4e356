"""SPAN, UpCunet, CUNet and UpConv7: what sets them apart.

The shared contract (any H and W, config and .keras round trips, a fit step) is in test_generators;
that the padding and cropping inside the models is the ncnn programs' is tested on the published
weights in tests/pretrained/test_zoo.py.
"""

import numpy as np
import pytest
import tensorflow as tf

from sr_tf.models import SPAN, CUNet, UpConv7, UpCunet
from sr_tf.models.layers import border_pad


def _image(h, w, seed=0):
    return np.random.default_rng(seed).random((1, h, w, 3), dtype=np.float32)


@pytest.mark.parametrize("mode, expected", [
    ("reflect", [2, 1, 0, 1, 2, 1, 0, 1]),    # numpy "reflect", continued past the far edge
    ("replicate", [0, 0, 0, 1, 2, 2, 2, 2]),
])
def test_border_pad_modes(mode, expected):
    x = tf.constant([0.0, 1.0, 2.0])[None, :, None, None]
    padded = border_pad(x, 2, 3, 0, 0, mode)
    assert padded.numpy()[0, :, 0, 0].tolist() == expected


def test_border_pad_matches_numpy_reflect_and_edge():
    x = _image(7, 9)
    for mode, np_mode in (("reflect", "reflect"), ("replicate", "edge")):
        ours = border_pad(tf.constant(x), 3, 5, 2, 6, mode).numpy()
        np.testing.assert_array_equal(ours, np.pad(x, ((0, 0), (3, 5), (2, 6), (0, 0)), np_mode))


def test_upcunet_x4_adds_the_nearest_upsampled_input():
    model = UpCunet(4, num_feat=4)
    x = _image(6, 5)
    model(x)
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    np.testing.assert_array_equal(model(x).numpy(), x.repeat(4, axis=1).repeat(4, axis=2))


def test_span_normalises_its_input_inside():
    """SPAN(mean m, range r) on x is the same network without normalisation on (x - m) * r."""
    x = _image(5, 6)
    mean, img_range = (0.5, 0.25, 0.1), 255.0
    normalising = SPAN(feature_channels=4, upscale=2, img_range=img_range, rgb_mean=mean)
    plain = SPAN(feature_channels=4, upscale=2, img_range=1.0, rgb_mean=(0.0, 0.0, 0.0))
    normalising(x)
    plain(x)
    plain.set_weights(normalising.get_weights())
    expected = plain((x - np.array(mean, np.float32)) * img_range).numpy()
    np.testing.assert_allclose(normalising(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(plain(x).numpy(), expected, atol=1e-3)


@pytest.mark.parametrize("factory, message", [
    (lambda: SPAN(rgb_mean=(0.5,)), "rgb_mean"),
    (lambda: SPAN(img_range=0), "img_range=0"),
    (lambda: UpCunet(scale=5), "scale=5"),
    (lambda: UpCunet(scale=4, num_in_ch=1, num_out_ch=3), "num_in_ch=1"),
    (lambda: CUNet(num_feat=0), "num_feat=0"),
    (lambda: UpConv7(num_in_ch=-1), "num_in_ch=-1"),
])
def test_bad_arguments_name_the_problem(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()
