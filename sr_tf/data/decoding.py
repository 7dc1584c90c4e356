"""Decoding image bytes: checked, PIL-based reading for building records, and TF decoding for pipelines.

Building records reads untrusted folders, so every file's header is read first
(`sr_tf.imageio.read_header`, the one header reader): empty files, non-images, headers
claiming more than `max_pixels` pixels (decompression bombs) and truncated data raise
`sr_tf.imageio.ImageError` naming the file, and the builder skips and reports it. The pipeline side decodes PNG/JPEG bytes
with `tf.io.decode_image` to `[H, W, 3]` uint8.
"""

from __future__ import annotations

import io

import numpy as np
import tensorflow as tf
from PIL import Image

from sr_tf.imageio import DEFAULT_MAX_PIXELS, decode_image, read_header

PASSTHROUGH_FORMATS = {"PNG": "png", "JPEG": "jpeg"}


def rgb8(array: np.ndarray) -> np.ndarray:
    """`[H, W, C]` uint8/uint16 (C = 1-4, as `sr_tf.imageio.decode_image` gives) -> `[H, W, 3]` uint8.

    16 bits are rounded to the nearest 8-bit level (x / 257), gray is replicated, alpha dropped:
    training and records work on 8-bit RGB.
    """
    if array.dtype == np.uint16:
        array = np.floor(array.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)
    if array.shape[-1] in (2, 4):
        array = array[..., :-1]
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(array)


def load_rgb(data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Fully decodes an image to `[H, W, 3]` uint8 RGB with the project's one decoder
    (`sr_tf.imageio.decode_image`: EXIF orientation applied), then `rgb8`.

    Raises:
      ImageError: as `sr_tf.imageio.read_header` (checked from the header before decoding), or
        truncated/corrupt pixel data.
    """
    read_header(data, name, max_pixels)
    return rgb8(decode_image(data, name))


def encode_png(array: np.ndarray, compress_level: int = 1) -> bytes:
    """PNG bytes of a `[H, W, 3]` uint8 array (compress level 1: fast, ~20% larger than level 6)."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def decode_rgb(encoded: tf.Tensor) -> tf.Tensor:
    """Decodes PNG/JPEG/BMP/GIF bytes to `[H, W, 3]` uint8 (gray replicated, alpha dropped)."""
    image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3])
