"""The Keras callbacks users reach for work on `SRModel` and `SRGAN`, and both round-trip as `.keras`."""

import csv

import keras
import numpy as np
import pytest
import tensorflow as tf

from sr_tf.losses import VGGFeatureExtractor
from sr_tf.models import RRDBNet, SRVGGNetCompact, VGGStyleDiscriminator
from sr_tf.training.models import SRGAN, SRModel


def make_srmodel():
    model = SRModel(SRVGGNetCompact(num_feat=8, num_conv=2, upscale=2), ema_decay=0.9, crop_border=2)
    model.compile(keras.optimizers.Adam(1e-3), pixel_loss="mse", tv_weight=1e-3)
    return model


def make_srgan(perceptual=True):
    g = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, scale=2)
    d = VGGStyleDiscriminator(input_size=32, num_feat=8, num_stages=2, dense_units=8)
    # weights=None: a random VGG (tests cannot download ImageNet weights); it is rebuilt, not saved
    vgg = VGGFeatureExtractor(("conv2_2",), weights=None) if perceptual else None
    model = SRGAN(g, d, feature_extractor=vgg, ema_decay=0.9, crop_border=2)
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([1], [0.1, 0.2])
    model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(2e-3), gan_type="relativistic",
                  gan_weight=schedule, pixel_weight=1e-2, perceptual_weight=float(perceptual))
    return model


@pytest.mark.parametrize("make", [make_srmodel, make_srgan], ids=["SRModel", "SRGAN"])
def test_standard_callbacks(make, tmp_path, dataset, pairs):
    keras.utils.set_random_seed(0)
    model = make()
    model.build(pairs[0].shape)
    callbacks = [
        keras.callbacks.ModelCheckpoint(str(tmp_path / "best.keras"), monitor="val_psnr_y", mode="max", save_best_only=True),
        keras.callbacks.ModelCheckpoint(str(tmp_path / "last.weights.h5"), save_weights_only=True),
        keras.callbacks.BackupAndRestore(str(tmp_path / "backup")),
        keras.callbacks.TensorBoard(str(tmp_path / "logs")),
        keras.callbacks.EarlyStopping(monitor="val_psnr_y", mode="max", patience=5),
        # no epoch improves by 1000 dB: the LR halves after epochs 2 and 3
        keras.callbacks.ReduceLROnPlateau(monitor="val_psnr_y", mode="max", patience=0, factor=0.5, min_delta=1e3),
        keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
    ]
    history = model.fit(dataset, epochs=3, validation_data=dataset, callbacks=callbacks, verbose=0, shuffle=False).history
    assert len(history["val_psnr_y"]) == 3 and all(np.isfinite(history["val_psnr_y"]))
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2] and "val_psnr_y" in rows[0]
    assert list((tmp_path / "logs").glob("train/events.out.tfevents.*"))
    # ReduceLROnPlateau acts on the generator's optimizer (model.optimizer)
    assert model.optimizer is model.g_optimizer
    assert float(model.g_optimizer.learning_rate.numpy()) == pytest.approx(2.5e-4)

    best = keras.saving.load_model(tmp_path / "best.keras")
    assert type(best) is type(model)
    reloaded = make()
    reloaded.build(pairs[0].shape)
    reloaded.load_weights(tmp_path / "last.weights.h5")
    for a, b in zip(model.weights, reloaded.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


@pytest.mark.parametrize("make", [make_srmodel, lambda: make_srgan(perceptual=False)], ids=["SRModel", "SRGAN"])
def test_keras_file_round_trip_keeps_nets_optimizers_and_step(make, tmp_path, dataset, pairs):
    keras.utils.set_random_seed(1)
    model = make()
    model.build(pairs[0].shape)
    model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    model.save(tmp_path / "trainer.keras")
    loaded = keras.saving.load_model(tmp_path / "trainer.keras")
    assert int(loaded.step.numpy()) == int(model.step.numpy()) == 2
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    for name in ("g_optimizer", *(("d_optimizer",) if isinstance(model, SRGAN) else ())):
        for a, b in zip(getattr(model, name).variables, getattr(loaded, name).variables, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert loaded.get_compile_config() == model.get_compile_config()
    np.testing.assert_array_equal(loaded.eval_generator(pairs[0]).numpy(), model.eval_generator(pairs[0]).numpy())
    # and training continues identically from the file as from the object in memory
    a = model.fit(dataset, epochs=1, verbose=0, shuffle=False).history
    b = loaded.fit(dataset, epochs=1, verbose=0, shuffle=False).history
    assert a == b


def test_vgg_weights_are_not_saved(tmp_path, pairs):
    model = make_srgan()
    model.build(pairs[0].shape)
    model.save(tmp_path / "gan.keras")
    without = SRGAN(model.generator, model.discriminator, ema_decay=0.9)
    without.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(2e-3))
    without.build(pairs[0].shape)
    without.save(tmp_path / "plain.keras")
    # the extractor (conv1_1..conv2_2, 260k weights = 1 MB) adds only its config to the file
    assert (tmp_path / "gan.keras").stat().st_size - (tmp_path / "plain.keras").stat().st_size < 50_000
    assert len(model.weights) == len(without.weights)


def test_trainer_build_creates_every_variable(pairs):
    model = make_srgan()
    model.build(pairs[0].shape)
    assert model.g_optimizer.built and model.d_optimizer.built
    slots = 2 * len(model.generator.trainable_variables)  # Adam: two moments per variable
    assert len(model.g_optimizer.variables) >= slots
    d_vars = {id(v) for v in model.discriminator.trainable_variables}
    assert not any(id(v) in d_vars for v in model.g_optimizer._trainable_variables)
    assert tf.reduce_all([tf.reduce_all(a == b) for a, b in zip(model.ema_generator.weights, model.generator.weights, strict=True)])
