import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from sr_tf import losses as L


def softplus(x):
    return math.log1p(math.exp(x))


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


PRED = np.array([[[[0.0], [0.5]], [[1.0], [0.25]]]], np.float32)  # [1, 2, 2, 1]
TARGET = np.array([[[[0.5], [0.5]], [[0.0], [0.75]]]], np.float32)


def test_pixel_losses_against_hand_values():
    # differences: -0.5, 0, 1, -0.5
    assert float(L.l1_loss(PRED, TARGET)) == pytest.approx((0.5 + 0 + 1 + 0.5) / 4)
    assert float(L.mse_loss(PRED, TARGET)) == pytest.approx((0.25 + 0 + 1 + 0.25) / 4)
    expected = (2 * math.sqrt(0.25 + 1e-3) + math.sqrt(1e-3) + math.sqrt(1 + 1e-3)) / 4
    assert float(L.charbonnier_loss(PRED, TARGET, eps=1e-3)) == pytest.approx(expected, rel=1e-6)


def test_reductions_and_weight():
    pred = np.stack([PRED[0], PRED[0] * 0]), np.stack([TARGET[0], TARGET[0] * 0])
    per_sample = L.l1_loss(*pred, reduction="per_sample", weight=2.0).numpy()
    np.testing.assert_allclose(per_sample, [2 * 0.5, 0.0])
    assert float(L.l1_loss(*pred, reduction="sum")) == pytest.approx(2.0)
    assert L.mse_loss(*pred, reduction="none").shape == (2, 2, 2, 1)
    with pytest.raises(ValueError, match="reduction="):
        L.l1_loss(*pred, reduction="avg")
    with pytest.raises(ValueError, match="differ in shape"):
        L.l1_loss(PRED, TARGET[:, :1])
    with pytest.raises(ValueError, match="name='l3'"):
        L.pixel_loss("l3", PRED, TARGET)


def test_total_variation_hand_value():
    # rows differ by 1 - 0 and 0.5 - 0.25; columns by 0.5 and 0.75
    image = np.array([[[[0.0], [0.5]], [[1.0], [0.25]]]], np.float32)
    expected = (1.0 + 0.25) / 2 + (0.5 + 0.75) / 2
    assert float(L.total_variation_loss(image)) == pytest.approx(expected)


REAL = np.array([[2.0], [-1.0]], np.float32)
FAKE = np.array([[0.5], [-3.0]], np.float32)


def test_standard_gan_losses_against_hand_values():
    d = (softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(-3.0)) / 2
    assert float(L.gan_discriminator_loss(REAL, FAKE)) == pytest.approx(d, rel=1e-6)
    g = (softplus(-0.5) + softplus(3.0)) / 2
    assert float(L.gan_generator_loss(FAKE)) == pytest.approx(g, rel=1e-6)
    assert float(L.discriminator_loss("vanilla", REAL, FAKE)) == pytest.approx(d, rel=1e-6)


def test_relativistic_losses_against_hand_values():
    mean_real, mean_fake = 0.5, -1.25
    real_rel = [2.0 - mean_fake, -1.0 - mean_fake]  # 3.25, 0.25
    fake_rel = [0.5 - mean_real, -3.0 - mean_real]  # 0.0, -3.5
    d = 0.5 * (sum(softplus(-r) for r in real_rel) / 2 + sum(softplus(f) for f in fake_rel) / 2)
    g = 0.5 * (sum(softplus(r) for r in real_rel) / 2 + sum(softplus(-f) for f in fake_rel) / 2)
    assert float(L.relativistic_discriminator_loss(REAL, FAKE)) == pytest.approx(d, rel=1e-6)
    assert float(L.relativistic_generator_loss(REAL, FAKE)) == pytest.approx(g, rel=1e-6)
    assert float(L.generator_adversarial_loss("relativistic", REAL, FAKE, weight=5e-3)) == pytest.approx(
        5e-3 * g, rel=1e-6
    )
    with pytest.raises(ValueError, match="gan_type"):
        L.discriminator_loss("wgan", REAL, FAKE)


def test_relativistic_generator_gradient_has_both_terms():
    # d/df_j of 0.5 * (mean_i softplus(r_i - mean f) + mean_j softplus(-(f_j - mean r)))
    #   = 0.5 * (-(1/N) * mean_i... ) written out for N = 2:
    n = 2
    mean_real, mean_fake = 0.5, -1.25
    real_rel = [2.0 - mean_fake, -1.0 - mean_fake]
    fake_rel = [0.5 - mean_real, -3.0 - mean_real]
    real_term = -sum(sigmoid(r) for r in real_rel) / n / n  # same for every j
    expected = [0.5 * (real_term - sigmoid(-f) / n) for f in fake_rel]
    fake = tf.Variable(FAKE)
    with tf.GradientTape() as tape:
        loss = L.relativistic_generator_loss(REAL, fake)
    grad = tape.gradient(loss, fake).numpy().ravel()
    np.testing.assert_allclose(grad, expected, rtol=1e-5)
    assert abs(real_term) > 1e-3  # the real-image term really contributes


def test_vgg_preprocess_matches_keras_caffe_mode():
    x = np.random.default_rng(0).random((2, 4, 4, 3)).astype(np.float32)
    expected = keras.applications.vgg19.preprocess_input(x * 255.0)
    np.testing.assert_allclose(L.vgg_preprocess(x).numpy(), expected, atol=1e-4)


def test_vgg_taps_before_and_after_activation():
    x = np.random.default_rng(1).random((1, 32, 32, 3)).astype(np.float32)
    keras.utils.set_random_seed(3)
    extractor = L.VGGFeatureExtractor(taps=("conv2_2", "relu2_2", "relu1_1", "conv5_4"), weights=None)
    keras.utils.set_random_seed(3)  # the same random VGG19 weights as inside the extractor
    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    feats = extractor(x)
    reference = keras.Model(vgg.input, [vgg.get_layer("block2_conv2").output, vgg.get_layer("block1_conv1").output])
    ref_22, ref_11 = reference(keras.applications.vgg19.preprocess_input(x * 255.0))
    np.testing.assert_allclose(feats["relu2_2"].numpy(), ref_22.numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(feats["relu1_1"].numpy(), ref_11.numpy(), rtol=1e-4, atol=1e-3)
    pre = feats["conv2_2"].numpy()
    assert pre.min() < 0  # pre-activation keeps negative responses
    np.testing.assert_allclose(np.maximum(pre, 0), feats["relu2_2"].numpy(), rtol=1e-5, atol=1e-5)
    assert feats["conv5_4"].shape == (1, 2, 2, 512)
    assert not extractor.trainable_weights


def test_vgg_tap_names_are_checked():
    with pytest.raises(ValueError, match="conv6_1"):
        L.VGGFeatureExtractor(taps=("conv6_1",), weights=None)
    with pytest.raises(ValueError, match="conv1_3"):
        L.VGGFeatureExtractor(taps=("conv1_3",), weights=None)


def test_perceptual_loss_weights_layers():
    sr = {"a": tf.fill([2, 2, 2, 1], 1.0), "b": tf.fill([2, 1, 1, 1], 3.0)}
    hr = {"a": tf.zeros([2, 2, 2, 1]), "b": tf.fill([2, 1, 1, 1], 1.0)}
    loss = L.perceptual_loss(sr, hr, {"a": 0.1, "b": 1.0}, criterion="mse", weight=2.0)
    assert float(loss) == pytest.approx(2.0 * (0.1 * 1.0 + 1.0 * 4.0))
    with pytest.raises(ValueError, match="missing"):
        L.perceptual_loss(sr, hr, {"c": 1.0})
