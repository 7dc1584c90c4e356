"""Fine-tuning an existing (e.g. imported pretrained) generator on a folder of images with `fit`."""

from __future__ import annotations

from pathlib import Path

import keras

from sr_tf.models import model_scale
from sr_tf.training import folder_data as fd
from sr_tf.training.models import SRModel


def retrain(
    generator: keras.Model,
    folder: str | Path,
    *,
    steps_per_epoch: int = 100,
    epochs: int = 1,
    hr_patch_size: int = 128,
    batch_size: int = 8,
    learning_rate: float = 1e-4,
    pixel_loss: str = "l1",
    val_folder: str | Path | None = None,
    ema_decay: float | None = None,
    callbacks: list | None = None,
    seed: int = 0,
    verbose: int | str = "auto",
) -> tuple[SRModel, keras.callbacks.History]:
    """Trains `generator` in place on random `hr_patch_size` patches of the images in `folder`
    (LR made by bicubic downscaling by the generator's scale) with `SRModel.fit`.

    Returns the `SRModel` (its `eval_generator` is the result: the EMA copy when `ema_decay` is
    set, else `generator` itself) and the Keras `History` (`val_psnr_y` / `val_ssim_y` per epoch
    when `val_folder` is given).
    """
    scale = model_scale(generator)
    images = [fd.load_image(f) for f in fd.image_files(folder)]
    train = fd.patch_dataset(images, scale, hr_patch_size, seed=seed).batch(batch_size, drop_remainder=True)
    val = None
    if val_folder is not None:
        val = fd.validation_dataset([fd.load_image(f) for f in fd.image_files(val_folder)], scale)
    model = SRModel(generator, ema_decay=ema_decay, crop_border=scale)
    model.compile(keras.optimizers.Adam(learning_rate, beta_1=0.9, beta_2=0.99), pixel_loss=pixel_loss)
    lr_shape = [None, hr_patch_size // scale, hr_patch_size // scale, 3]
    model.build_all(lr_shape, [None, hr_patch_size, hr_patch_size, 3])
    history = model.fit(
        train, steps_per_epoch=steps_per_epoch, epochs=epochs, validation_data=val, callbacks=callbacks, verbose=verbose
    )
    return model, history
