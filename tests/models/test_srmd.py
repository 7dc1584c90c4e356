"""SRMD: the noise level input and the degradation map built inside the model.

The shared contract (any H and W, config and .keras round trips, a fit step) is in test_generators;
the published weights against srmd-ncnn-vulkan's preprocessing on ncnn are in tests/pretrained/test_srmd_ncnn.py.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from sr_tf.models import SRMD
from sr_tf.models.srmd import BICUBIC_KERNEL_PCA, with_noise_level


def _image(n=1, h=6, w=5, seed=0):
    return np.random.default_rng(seed).random((n, h, w, 3), dtype=np.float32)


def _model(**kwargs):
    model = SRMD(scale=2, num_feat=6, num_conv=3, **kwargs)
    model(_image())
    rng = np.random.default_rng(1)  # weights large enough that the noise channel matters
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def test_noise_level_changes_the_output_and_is_per_image():
    model = _model(noise_level=3.0)
    x = _image(2)
    default, explicit = model(x).numpy(), model(x, noise_level=3.0).numpy()
    np.testing.assert_array_equal(default, explicit)
    assert np.abs(model(x, noise_level=30.0).numpy() - default).max() > 1e-2
    mixed = model(x, noise_level=tf.constant([0.0, 30.0])).numpy()
    np.testing.assert_allclose(mixed[0], model(x[:1], noise_level=0.0).numpy()[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mixed[1], model(x[1:], noise_level=[30.0]).numpy()[0], rtol=1e-4, atol=1e-5)


def test_degradation_map_is_the_image_then_kernel_pca_then_noise_over_255():
    model = _model()
    x = tf.constant(_image(2, 3, 4))
    maps = model.degradation_input(x, [0.0, 51.0]).numpy()
    assert maps.shape == (2, 3, 4, 19)
    np.testing.assert_array_equal(maps[..., :3], x.numpy())
    np.testing.assert_allclose(maps[0, 1, 2, 3:18], BICUBIC_KERNEL_PCA, rtol=1e-6)
    assert maps[0, ..., 18].max() == 0 and np.allclose(maps[1, ..., 18], 0.2)
    assert SRMD(scale=2, num_feat=4, num_conv=2, noise_free=True).degradation_input(x).shape[-1] == 18


def test_noise_free_model_refuses_a_noise_level():
    model = SRMD(scale=3, num_feat=4, num_conv=2, noise_free=True)
    assert not model.accepts_noise_level and tuple(model(_image()).shape) == (1, 18, 15, 3)
    with pytest.raises(ValueError, match="noise_free=True"):
        model(_image(), noise_level=5.0)
    with pytest.raises(ValueError, match="takes no noise level"):
        with_noise_level(model, 5.0)


@pytest.mark.parametrize("level", [-1.0, 76.0])
def test_out_of_range_noise_levels_name_the_parameter(level):
    with pytest.raises(ValueError, match=f"noise_level={level}"):
        SRMD(noise_level=level)
    with pytest.raises(tf.errors.InvalidArgumentError, match="noise_level must be"):
        _model()(_image(), noise_level=[level])


def test_with_noise_level_is_a_copy_with_another_default(tmp_path):
    model = _model(noise_level=3.0)
    copy = with_noise_level(model, 10.0)
    x = _image()
    assert model.noise_level == 3.0 and copy.noise_level == 10.0
    np.testing.assert_allclose(copy(x).numpy(), model(x, noise_level=10.0).numpy(), rtol=1e-4, atol=1e-5)
    copy.save(tmp_path / "m.keras")  # the default travels with the file
    np.testing.assert_array_equal(keras.saving.load_model(tmp_path / "m.keras")(x).numpy(), copy(x).numpy())


def test_edges_are_replicated_not_zero_padded():
    """Valid convs on the edge-replicated image: on a constant image every output pixel equals the one
    at the same sub-pixel position in the middle, up to the edge (zero padding would change the edges)."""
    model = _model()
    out = model(np.full((1, 7, 6, 3), 0.4, np.float32)).numpy()
    np.testing.assert_allclose(out, np.tile(out[:, 6:8, 6:8], (1, 7, 6, 1)), rtol=1e-5, atol=1e-4)


def test_mixed_precision_policy():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = SRMD(scale=2, num_feat=4, num_conv=2)
        out = model(_image(), noise_level=[5.0])
    finally:
        keras.config.set_dtype_policy(previous)
    assert out.dtype == "float32" and tuple(out.shape) == (1, 12, 10, 3)
