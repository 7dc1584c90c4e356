import keras
import numpy as np
import pytest

from sr_tf.models import UNetDiscriminatorSN, VGGStyleDiscriminator
from tests.model_checks import (
    assert_config_round_trip,
    assert_fit_step_updates,
    assert_saved_model_round_trip,
)


@pytest.mark.parametrize(
    "kwargs, size",
    [
        (dict(input_size=32, num_feat=8, num_stages=3), 32),  # ESRGAN-style (4x4 strided convs)
        (dict(input_size=16, num_feat=8, num_stages=2, dense_units=16, strided_kernel_size=3), 16),  # SRGAN
    ],
)
def test_vgg_style_discriminator(kwargs, size, tmp_path):
    model = VGGStyleDiscriminator(**kwargs)
    x = np.random.default_rng(0).random((2, size, size, 3), dtype=np.float32)
    assert tuple(model(x).shape) == (2, 1)
    assert_config_round_trip(model)
    assert_saved_model_round_trip(model, x, tmp_path)
    assert_fit_step_updates(model, x, np.ones((2, 1), np.float32))


def test_vgg_style_discriminator_refuses_other_patch_sizes():
    model = VGGStyleDiscriminator(input_size=32, num_feat=8, num_stages=3)
    with pytest.raises(ValueError, match="32x32"):
        model(np.zeros((1, 48, 48, 3), np.float32))
    with pytest.raises(ValueError, match="divisible"):
        VGGStyleDiscriminator(input_size=40, num_stages=4)


def test_esrgan_preset_structure():
    model = VGGStyleDiscriminator()  # ESRGAN's 128x128 discriminator
    model(np.zeros((1, 128, 128, 3), np.float32))
    assert model.dense1.kernel.shape == (512 * 4 * 4, 100)


@pytest.mark.parametrize("size", [(16, 16), (13, 21), (5, 3)])
def test_unet_discriminator_any_size(size, tmp_path):
    model = UNetDiscriminatorSN(num_feat=8)
    x = np.random.default_rng(0).random((2, *size, 3), dtype=np.float32)
    assert tuple(model(x).shape) == (2, *size, 1)
    if size == (13, 21):
        assert_config_round_trip(model)
        assert_saved_model_round_trip(model, x, tmp_path)
        assert_fit_step_updates(model, x, np.ones((2, *size, 1), np.float32))


def test_unet_discriminator_uses_spectral_norm():
    model = UNetDiscriminatorSN(num_feat=8)
    model(np.zeros((1, 16, 16, 3), np.float32))
    wrapped = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.SpectralNormalization)]
    assert len(wrapped) == 8  # conv1..conv8, as published; conv0 and conv9 are plain
    # Power iteration runs in training: the singular-vector estimate moves.
    u_before = wrapped[0].vector_u.numpy().copy()
    model(np.random.default_rng(1).random((1, 16, 16, 3), dtype=np.float32), training=True)
    assert not np.array_equal(u_before, wrapped[0].vector_u.numpy())
