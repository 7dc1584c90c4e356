"""Image folders and tiny recipe overrides shared by the training tests."""

import numpy as np
from PIL import Image

TINY = [
    "generator.kwargs.num_feat=8", "generator.kwargs.num_block=1", "generator.kwargs.scale=2",
    "data.scale=2", "data.batch_size=2", "data.patch_size=16",
    "steps_per_epoch=2", "val_every=2", "checkpoint_every=2",
]

# srgan recipe, tiny: SRResNet + VGG-style discriminator (batch norm), relativistic GAN, EMA, no VGG19
TINY_GAN = [
    *TINY, "discriminator.kwargs.input_size=16", "discriminator.kwargs.num_feat=8",
    "discriminator.kwargs.num_stages=2", "discriminator.kwargs.dense_units=8",
    "loss.perceptual_weight=0", "loss.pixel_weight=1", "loss.gan_type=\"relativistic\"", "loss.gan_weight=0.1",
    "ema_decay=0.9", "optim.g_lr=1e-3", "optim.d_lr=1e-3", "checkpoint_every=2",
]


def write_images(folder, shape, seed=0, step=10.0, count=3):
    """`count` smooth random PNGs (random walks along one axis) in a new `folder`."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = np.clip(np.cumsum(rng.normal(0, step, (*shape, 3)), axis=1) + 128, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")
    return folder
