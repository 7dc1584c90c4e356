"""Reading and writing images without losing what they hold.

Arrays are `[H, W, C]` with C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4
(RGBA), dtype uint8 or uint16 (16-bit PNGs stay 16-bit). JPEG orientation
(EXIF) is applied on reading so the pixels are as a viewer shows them.
Writes are atomic: a temporary file in the target folder, then a rename.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from sr_tf.integrity import atomic_write_bytes
from sr_tf.suffixes import IMAGE_SUFFIXES

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
READABLE_SUFFIXES = IMAGE_SUFFIXES
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageError(ValueError):
    """An image that cannot be read or written; the message names the file and the reason."""


# The one decoding limit: Pillow's own decompression-bomb threshold (2 x its default
# MAX_IMAGE_PIXELS). Every reader (upscale, serving, batch, records, the training pipeline) refuses
# larger images from their header, before a decoder allocates for the pixels.
DEFAULT_MAX_PIXELS = 2 * 89_478_485
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class ImageInfo:
    """What an image header says: Pillow's format name ("PNG", "JPEG", ...), mode ("RGB", "L",
    "I;16", ...; "" when the header was too large for Pillow to open), size in pixels, and the EXIF
    orientation of JPEGs (1: none)."""

    format: str
    mode: str
    width: int
    height: int
    orientation: int = 1

    @property
    def passthrough(self) -> bool:
        """Whether the encoded bytes can be stored unchanged (TF decodes them to the same RGB pixels)."""
        return self.format in ("PNG", "JPEG") and self.mode == "RGB" and self.orientation in (0, 1)


def _png_bit_depth(data: bytes) -> int | None:
    if data[:8] != PNG_SIGNATURE or len(data) < 26 or data[12:16] != b"IHDR":
        return None
    return data[24]


def _check_pixels(width: int, height: int, limit: int | None = DEFAULT_MAX_PIXELS) -> None:
    if limit is not None and width * height > limit:
        raise ImageError(f"image is {width}x{height} ({width * height} pixels), more than max_pixels={limit}: "
                         "too large to decode safely")


def read_header(data: bytes, name: str = "image", max_pixels: int | None = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """The one image header reader: format, mode, size and orientation without decoding a pixel,
    so limits are checked before any decoder allocates for the pixels.

    Args:
      data: the encoded image, or its first bytes (~64 KiB hold the header of PNGs and most JPEGs).
      name: the file, URI or request element, for messages.
      max_pixels: largest accepted `width * height` (None: any; a PNG is then sized from its IHDR
        chunk even beyond Pillow's threshold, so a server can say how large it is).

    Raises:
      ImageError: empty data, not an image, an unreadable header, no pixels, or more than
        `max_pixels`; the message starts with `name` and says why.
    """
    import warnings

    if not data:
        raise ImageError(f"{name}: file is empty (0 bytes)")
    try:
        if _png_bit_depth(data) is not None:  # sized from IHDR: Pillow refuses to open bombs at all
            width, height = struct.unpack(">II", data[16:24])
            _check_pixels(width, height, max_pixels)
            if width * height > DEFAULT_MAX_PIXELS:
                return ImageInfo("PNG", "", width, height)
        with warnings.catch_warnings():  # the caller's limit applies; Pillow's warning is noise
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                orientation = int(image.getexif().get(_EXIF_ORIENTATION, 1) or 1) if image.format == "JPEG" else 1
                info = ImageInfo(str(image.format or "unknown"), image.mode, int(width), int(height), orientation)
    except ImageError as e:
        raise ImageError(f"{name}: {e}") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{name}: image is too large to decode safely ({e})") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image in a format we can read") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{name}: image header is corrupt or truncated ({e})") from None
    if info.width < 1 or info.height < 1:
        raise ImageError(f"{name}: image has no pixels ({info.width}x{info.height})")
    try:
        _check_pixels(info.width, info.height, max_pixels)
    except ImageError as e:
        raise ImageError(f"{name}: {e}") from None
    return info


def _decode_png16(data: bytes) -> np.ndarray:
    import tensorflow as tf

    return tf.io.decode_png(data, channels=0, dtype=tf.uint16).numpy()


def _pil_to_array(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(image, dtype=np.uint16)[..., None]
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("1", "L"):
        image = image.convert("L")
    elif mode in ("PA", "LA"):
        image = image.convert("LA")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        image = image.convert("RGB")
    elif mode not in ("RGB", "RGBA"):
        raise ImageError(f"pixel mode {mode!r} is not supported")
    array = np.asarray(image)
    return array[..., None] if array.ndim == 2 else array


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Reads an image file into `[H, W, C]` uint8 or uint16 (see the module docstring).

    Raises:
      ImageError: unreadable, empty, truncated, too large (PIL's decompression-bomb limit) or an
        unsupported pixel mode; the message names the file.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ImageError(f"{path}: cannot read file: {e.strerror or e}") from e
    return decode_image(data, str(path))


def decode_image(data: bytes, name: str = "image") -> np.ndarray:
    """Decodes an encoded image (PNG, JPEG, WebP, ...) as `read_image` does; `name` (a path, URI or
    record key) starts every error message.

    Raises:
      ImageError: as `read_image`.
    """
    if not data:
        raise ImageError(f"{name}: file is empty (0 bytes)")
    try:
        depth = _png_bit_depth(data)
        if depth is not None:  # check the header's size before any decoder allocates for it
            _check_pixels(*struct.unpack(">II", data[16:24]))
        if depth == 16:
            return _decode_png16(data)
        with Image.open(io.BytesIO(data)) as image:
            _check_pixels(*image.size)
            image = ImageOps.exif_transpose(image)
            image.load()
            return _pil_to_array(image)
    except ImageError as e:
        raise ImageError(f"{name}: {e}") from e
    except Image.DecompressionBombError as e:
        raise ImageError(f"{name}: image is too large to decode safely ({e})") from e
    except UnidentifiedImageError as e:
        raise ImageError(f"{name}: not an image in a format we can read") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{name}: image is corrupt or truncated ({e})") from e
    except Exception as e:  # TensorFlow's decoders raise their own error types
        raise ImageError(f"{name}: image is corrupt or truncated ({type(e).__name__}: {e})") from e


def encode_image(array: np.ndarray, fmt: str, quality: int = 95) -> bytes:
    """Encodes `[H, W, C]` uint8/uint16 as "PNG", "JPEG" or "WEBP" bytes.

    PNG keeps 16-bit and alpha. JPEG and WebP are 8-bit: 16-bit input is
    refused (say PNG), and JPEG refuses alpha rather than dropping it.
    """
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise ImageError(f"cannot encode an array of shape {array.shape}: expected [H, W, 1|2|3|4]")
    if fmt == "PNG":
        if array.dtype == np.uint16:
            import tensorflow as tf

            return tf.io.encode_png(array).numpy()
        return _pil_bytes(array, "PNG", compress_level=1)
    if array.dtype != np.uint8:
        raise ImageError(f"{fmt} stores 8 bits per channel; this image has 16. Write PNG to keep them.")
    if fmt == "JPEG":
        if array.shape[-1] in (2, 4):
            raise ImageError("JPEG cannot store the alpha channel. Write PNG or WebP to keep it.")
        return _pil_bytes(array, "JPEG", quality=quality)
    if fmt == "WEBP":
        if array.shape[-1] == 2:  # WebP has no gray + alpha mode
            array = np.concatenate([np.repeat(array[..., :1], 3, axis=-1), array[..., 1:]], axis=-1)
        return _pil_bytes(array, "WEBP", quality=quality, lossless=quality >= 100)
    raise ImageError(f"unknown output format {fmt!r}; expected one of PNG, JPEG, WEBP")


def _pil_bytes(array: np.ndarray, fmt: str, **options) -> bytes:
    import io

    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[array.shape[-1]]
    image = Image.fromarray(array[..., 0] if mode == "L" else array, mode=mode)
    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


def format_for(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ImageError(f"{path}: unknown output extension {suffix!r}; use one of {sorted(FORMATS)}")
    return FORMATS[suffix]


def write_image(path: str | os.PathLike, array: np.ndarray, quality: int = 95) -> None:
    """Writes `array` to `path` (format from the extension) atomically."""
    path = Path(path)
    data = encode_image(array, format_for(path), quality=quality)
    atomic_write_bytes(path, data)


def png_header(width: int, height: int, bit_depth: int = 8, color_type: int = 2) -> bytes:
    """The first 33 bytes of a PNG (signature + IHDR), e.g. to test huge-dimension headers."""
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return PNG_SIGNATURE + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
