import keras
import numpy as np
import pytest
import tensorflow as tf

from sr_tf import metrics as M
from sr_tf.losses import VGGFeatureExtractor
from sr_tf.models import RRDBNet, SRResNet, SRVGGNetCompact, VGGStyleDiscriminator
from sr_tf.training.models import SRGAN, SRModel


def tiny_rrdb():
    return RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, scale=2)


def snapshot(model):
    return [w.copy() for w in model.get_weights()]


def changed(before, model):
    return any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


def test_srgan_fit_one_epoch_updates_both_nets(dataset, pairs):
    keras.utils.set_random_seed(0)
    g = tiny_rrdb()
    d = VGGStyleDiscriminator(input_size=32, num_feat=8, num_stages=2, dense_units=8)
    model = SRGAN(g, d, feature_extractor=VGGFeatureExtractor(("conv2_2",), weights=None), crop_border=2)
    model.compile(
        keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3), gan_type="relativistic", gan_weight=5e-3,
        pixel_weight=1e-2, perceptual_weight=1.0,
    )
    model.build(pairs[0].shape)
    g0, d0 = snapshot(g), snapshot(d)
    history = model.fit(dataset, epochs=1, verbose=0, validation_data=dataset).history
    for key in ("g_loss", "pixel_loss", "perceptual_loss", "gan_loss", "d_loss", "val_psnr_y", "val_ssim_y"):
        assert np.isfinite(history[key][0]), key
    assert changed(g0, g) and changed(d0, d)
    assert int(model.step.numpy()) == 2  # 4 patches / batch 2


def test_srmodel_ema_is_the_moving_average(pairs):
    keras.utils.set_random_seed(0)
    g = SRVGGNetCompact(num_feat=8, num_conv=2, upscale=2)
    model = SRModel(g, ema_decay=0.9)
    model.compile(keras.optimizers.Adam(1e-2), pixel_loss="mse")
    model.build(pairs[0].shape)
    w0 = snapshot(g)
    model.fit(tf.data.Dataset.from_tensor_slices(pairs).batch(4), epochs=1, verbose=0)
    w1 = g.get_weights()
    for ema, a, b in zip(model.ema_generator.get_weights(), w0, w1, strict=True):
        np.testing.assert_allclose(ema, 0.9 * a + 0.1 * b, rtol=1e-5, atol=1e-7)
    assert model.eval_generator is model.ema_generator


def test_test_step_reports_psnr_on_cropped_y(dataset, pairs):
    model = SRModel(tiny_rrdb(), crop_border=3)
    model.compile(keras.optimizers.Adam(1e-3))
    model.build(pairs[0].shape)
    logs = model.evaluate(dataset, verbose=0, return_dict=True)
    lr, hr = pairs
    sr = np.clip(model.generator(lr).numpy(), 0, 1).astype(np.float64)
    weights = np.array([65.481, 128.553, 24.966])
    y_sr, y_hr = sr @ weights + 16, hr.astype(np.float64) @ weights + 16
    mse = ((y_sr - y_hr)[:, 3:-3, 3:-3] ** 2).mean(axis=(1, 2))
    assert logs["psnr_y"] == pytest.approx(np.mean(10 * np.log10(255.0**2 / mse)), rel=1e-4)
    assert logs["ssim_y"] == pytest.approx(float(np.mean(M.ssim(sr, hr.astype(np.float64), crop_border=3, y_channel=True))), rel=1e-4)


def test_scheduled_loss_weight_follows_the_step(pairs):
    weight = keras.optimizers.schedules.PiecewiseConstantDecay([0], [0.0, 1.0])  # step 0: 0, then 1
    model = SRModel(SRVGGNetCompact(num_feat=8, num_conv=1, upscale=2))
    model.compile(keras.optimizers.Adam(1e-3), pixel_weight=weight)
    ds = tf.data.Dataset.from_tensor_slices(pairs).batch(4)
    first = model.fit(ds, epochs=1, verbose=0).history["pixel_loss"][0]
    second = model.fit(ds, epochs=1, verbose=0).history["pixel_loss"][0]
    assert first == 0.0 and second > 0.0


def test_mixed_float16_wraps_optimizers_and_trains(dataset, pairs):
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    g = SRResNet(num_feat=8, num_block=1, scale=2)
    d = VGGStyleDiscriminator(input_size=32, num_feat=8, num_stages=2, dense_units=8)
    model = SRGAN(g, d, crop_border=2)
    model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    assert isinstance(model.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(model.d_optimizer, keras.optimizers.LossScaleOptimizer)
    model.build(pairs[0].shape)
    history = model.fit(dataset, epochs=1, verbose=0).history
    assert np.isfinite(history["g_loss"][0]) and np.isfinite(history["d_loss"][0])
    assert g.get_layer("conv_first").compute_dtype == "float16"


def test_perceptual_weight_needs_an_extractor():
    model = SRModel(tiny_rrdb())
    with pytest.raises(ValueError, match="feature_extractor"):
        model.compile(keras.optimizers.Adam(), perceptual_weight=1.0)
    with pytest.raises(ValueError, match="ema_decay"):
        SRModel(tiny_rrdb(), ema_decay=1.5)
