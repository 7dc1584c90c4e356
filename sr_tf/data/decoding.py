"""Decoding image bytes: checked, PIL-based reading for building records, and TF decoding for pipelines.

Building records reads untrusted folders, so every file is inspected before it is
decoded: empty files, non-images, headers claiming more than `max_pixels` pixels
(decompression bombs) and truncated data raise `UnreadableImageError` naming the
file, and the builder skips and reports it. The pipeline side decodes PNG/JPEG bytes
with `tf.io.decode_image` to `[H, W, 3]` uint8.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 100_000_000
PASSTHROUGH_FORMATS = {"PNG": "png", "JPEG": "jpeg"}
_EXIF_ORIENTATION = 0x0112


class UnreadableImageError(ValueError):
    """An input image that cannot be used; the message names the file and says why."""


@dataclass(frozen=True)
class ImageInfo:
    """What an image header says: PIL format name (e.g. "PNG"), mode (e.g. "RGB"), size, EXIF orientation."""

    format: str
    mode: str
    width: int
    height: int
    orientation: int = 1

    @property
    def passthrough(self) -> bool:
        """Whether the encoded bytes can be stored unchanged (TF decodes them to the same RGB pixels)."""
        return self.format in PASSTHROUGH_FORMATS and self.mode == "RGB" and self.orientation in (0, 1)


def inspect_image(data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Reads an image header without decoding the pixels.

    Args:
      data: the file's bytes (the first ~64 KiB are enough for PNG and most JPEGs).
      name: the file name, for messages.
      max_pixels: largest accepted `width * height`.

    Raises:
      UnreadableImageError: empty, not an image, or larger than `max_pixels`.
    """
    if not data:
        raise UnreadableImageError(f"{name}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                orientation = 1
                if image.format == "JPEG":
                    orientation = int(image.getexif().get(_EXIF_ORIENTATION, 1) or 1)
                info = ImageInfo(str(image.format), image.mode, int(width), int(height), orientation)
    except UnidentifiedImageError:
        raise UnreadableImageError(f"{name}: not an image (no known image format)") from None
    except Image.DecompressionBombError as e:
        raise UnreadableImageError(f"{name}: image too large to decode safely ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise UnreadableImageError(f"{name}: unreadable image header ({e})") from None
    if info.width < 1 or info.height < 1:
        raise UnreadableImageError(f"{name}: image has no pixels ({info.width}x{info.height})")
    if info.width * info.height > max_pixels:
        raise UnreadableImageError(
            f"{name}: image is {info.width}x{info.height} ({info.width * info.height} pixels), "
            f"more than max_pixels={max_pixels}; raise `max_pixels` to include it"
        )
    return info


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
      UnreadableImageError: as `inspect_image` (checked from the header before decoding), or
        truncated/corrupt pixel data.
    """
    from sr_tf.imageio import ImageError, decode_image

    inspect_image(data, name, max_pixels)
    try:
        return rgb8(decode_image(data, name))
    except ImageError as e:
        raise UnreadableImageError(str(e)) from None


def encode_png(array: np.ndarray, compress_level: int = 1) -> bytes:
    """PNG bytes of a `[H, W, 3]` uint8 array (compress level 1: fast, ~20% larger than level 6)."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def decode_rgb(encoded: tf.Tensor) -> tf.Tensor:
    """Decodes PNG/JPEG/BMP/GIF bytes to `[H, W, 3]` uint8 (gray replicated, alpha dropped)."""
    image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
    return tf.ensure_shape(image, [None, None, 3])
