"""Small `(lr, hr)` datasets from a folder of images, for `sr-tf train --data DIR` and retraining.

LR images are made by MATLAB-style bicubic downscaling (`sr_tf.data.degradations.
bicubic_downscale`; without the data package, `tf.image.resize(..., antialias=True)`, which is
within 0.35/255 of MATLAB's `imresize`), clipped to [0, 1] and rounded to 8 bits (as stored LR images are). Decoded images are cached in memory, so this
suits folders of tens to hundreds of images; use `sr_tf.data` pipelines for DIV2K-sized sets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def image_files(folder: str | Path) -> list[Path]:
    """Image files directly in `folder`, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"--data must be a folder of images. Received: {str(folder)!r}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"No images ({', '.join(IMAGE_SUFFIXES)}) in {str(folder)!r}.")
    return files


def load_image(path: str | Path, downscale: int = 1) -> np.ndarray:
    """`[H, W, 3] float32 in [0, 1]` RGB, optionally downscaled by an integer factor first.

    `downscale > 1` is an antialiased MATLAB-bicubic resize (as `sr-tf evaluate --hr-downscale`),
    rounded to 8 bits: the usual way to get cleaner HR targets from JPEG photos.
    """
    if int(downscale) != downscale or downscale < 1:
        raise ValueError(f"downscale must be an integer >= 1. Received: downscale={downscale!r}")
    with Image.open(path) as im:
        image = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    if downscale > 1:
        from sr_tf.data.resize import imresize

        image = to_8bit(imresize(image, int(downscale))).numpy()
    return image


def bicubic_downscale(image: tf.Tensor, scale: int) -> tf.Tensor:
    """`[..., H, W, C]` in [0, 1] -> `[..., H/scale, W/scale, C]` (H, W multiples of scale), clipped."""
    try:
        from sr_tf.data.degradations import bicubic_downscale as data_bicubic
    except ImportError:
        data_bicubic = None
    if data_bicubic is not None:
        return tf.clip_by_value(tf.cast(data_bicubic(image, scale), tf.float32), 0.0, 1.0)
    shape = tf.shape(image)
    size = tf.stack([shape[-3] // scale, shape[-2] // scale])
    return tf.clip_by_value(tf.image.resize(image, size, method="bicubic", antialias=True), 0.0, 1.0)


def to_8bit(image: tf.Tensor) -> tf.Tensor:
    """Rounds `[0, 1]` values to the nearest of 256 levels (as LR images stored as 8-bit files are)."""
    return tf.floor(tf.clip_by_value(image, 0.0, 1.0) * 255.0 + 0.5) / 255.0


def crop_to_multiple(image: np.ndarray, scale: int) -> np.ndarray:
    h, w = image.shape[0] // scale * scale, image.shape[1] // scale * scale
    return image[:h, :w]


def patch_dataset(images: list[np.ndarray], scale: int, hr_patch_size: int, seed: int = 0) -> tf.data.Dataset:
    """Infinite, unbatched `(lr [p/s, p/s, 3], hr [p, p, 3])` random patches with random flips and
    90-degree rotations, drawn uniformly from `images` (each `[H, W, 3] float32 in [0, 1]`)."""
    if hr_patch_size % scale:
        raise ValueError(f"hr_patch_size must be a multiple of scale={scale}. Received: hr_patch_size={hr_patch_size}")
    small = [i.shape for i in images if min(i.shape[:2]) < hr_patch_size]
    if small:
        raise ValueError(f"Images must be at least {hr_patch_size} pixels on each side. Received shapes: {small}")
    tensors = [tf.constant(i) for i in images]

    def gen():
        rng = np.random.default_rng(seed)
        while True:
            yield int(rng.integers(len(tensors))), rng.integers(0, 2**31 - 1, size=2)

    def make(index, pair_seed):
        hr = tf.switch_case(index, [lambda t=t: _random_crop(t, hr_patch_size, pair_seed) for t in tensors])
        flip = tf.random.stateless_uniform([2], seed=pair_seed + 1, maxval=2, dtype=tf.int32)
        hr = tf.cond(flip[0] > 0, lambda: tf.image.flip_left_right(hr), lambda: hr)
        hr = tf.image.rot90(hr, k=flip[1])
        hr.set_shape([hr_patch_size, hr_patch_size, 3])
        return to_8bit(bicubic_downscale(hr, scale)), hr

    ds = tf.data.Dataset.from_generator(
        gen, output_signature=(tf.TensorSpec([], tf.int32), tf.TensorSpec([2], tf.int64))
    )
    return ds.map(make, num_parallel_calls=tf.data.AUTOTUNE)


def _random_crop(image: tf.Tensor, size: int, seed: tf.Tensor) -> tf.Tensor:
    return tf.image.stateless_random_crop(image, [size, size, 3], seed=seed)


def validation_pairs(images: list[np.ndarray], scale: int) -> list[tuple[tf.Tensor, tf.Tensor]]:
    """`(lr [1, h, w, 3], hr [1, s*h, s*w, 3])` float32 pairs of whole images (cropped to multiples
    of `scale`); LR is the MATLAB-bicubic downscale rounded to 8 bits, as stored LR benchmark
    images are (and as `sr-tf evaluate` makes them)."""
    pairs = []
    for image in images:
        hr = tf.constant(crop_to_multiple(image, scale))[tf.newaxis]
        lr = to_8bit(bicubic_downscale(hr, scale))
        pairs.append((lr, hr))
    return pairs


def bicubic_baseline(pairs: list[tuple[tf.Tensor, tf.Tensor]], scale: int) -> float:
    """Mean PSNR-Y (border `scale`) of MATLAB-bicubic upscaling over `validation_pairs`: the number
    a trained model has to beat."""
    from sr_tf import metrics
    from sr_tf.evaluation.methods import bicubic_upscale

    def uint8(t: tf.Tensor) -> np.ndarray:  # exact: the pairs hold 8-bit values
        return np.rint(t[0].numpy() * 255.0).astype(np.uint8)

    values = [float(metrics.psnr(bicubic_upscale(uint8(lr), scale), uint8(hr), crop_border=scale, y_channel=True))
              for lr, hr in pairs]
    return float(np.mean(values))


def validation_dataset(images: list[np.ndarray], scale: int) -> tf.data.Dataset:
    """Whole images (cropped to multiples of `scale`), batch 1: `(lr [1, h, w, 3], hr [1, s*h, s*w, 3])`
    (see `validation_pairs`)."""
    return pairs_dataset(validation_pairs(images, scale))


def pairs_dataset(pairs: list[tuple[tf.Tensor, tf.Tensor]]) -> tf.data.Dataset:
    """A dataset of `validation_pairs`, one pair per element."""
    return tf.data.Dataset.from_generator(
        lambda: iter(pairs),
        output_signature=(tf.TensorSpec([1, None, None, 3], tf.float32), tf.TensorSpec([1, None, None, 3], tf.float32)),
    )
