"""Reading and writing images without losing what they hold.

Arrays are `[H, W, C]` with C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4
(RGBA), dtype uint8 or uint16 (16-bit PNGs stay 16-bit). JPEG orientation
(EXIF) is applied on reading so the pixels are as a viewer shows them.
Writes are atomic: a temporary file in the target folder, then a rename.

Metadata (`ImageMetadata`, `read_metadata`) is what a file says about its pixels besides the
pixels: the ICC profile, EXIF, XMP, PNG text chunks and the resolution (DPI). `encode_image` and
`write_image` embed it when given one; `ImageMetadata.upscaled` makes the metadata of an
upscaled copy (orientation reset to 1, pixel dimensions and DPI updated).
"""

from __future__ import annotations

import dataclasses
import io
import os
import struct
import zlib
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


def read_bytes(path: str | os.PathLike) -> bytes:
    """A file's bytes; `ImageError` naming the file when it cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ImageError(f"{path}: cannot read file: {e.strerror or e}") from e


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Reads an image file into `[H, W, C]` uint8 or uint16 (see the module docstring).

    Raises:
      ImageError: unreadable, empty, truncated, too large (PIL's decompression-bomb limit) or an
        unsupported pixel mode; the message names the file.
    """
    return decode_image(read_bytes(path), str(path))


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
        if depth == 16:  # TensorFlow's decoder keeps 16 bits; the orientation is applied here
            return _orient(_decode_png16(data), read_metadata(data, name).orientation)
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


def encode_image(array: np.ndarray, fmt: str, quality: int = 95, metadata: ImageMetadata | None = None) -> bytes:
    """Encodes `[H, W, C]` uint8/uint16 as "PNG", "JPEG" or "WEBP" bytes.

    PNG keeps 16-bit and alpha. JPEG and WebP are 8-bit: 16-bit input is
    refused (say PNG), and JPEG refuses alpha rather than dropping it.

    `metadata` (None: none) is embedded where the format has a place for it: the ICC profile
    (PNG iCCP, JPEG APP2, WebP ICCP; only when its colour space is the written pixels'), EXIF
    (PNG eXIf, JPEG APP1, WebP EXIF), XMP (PNG iTXt `XML:com.adobe.xmp`, JPEG APP1, WebP XMP),
    DPI (PNG pHYs, JPEG JFIF density; WebP has none, its EXIF resolution is kept), PNG text
    chunks and PNG colour chunks (sRGB, gAMA, cHRM, cICP) in PNGs only. It is written as given:
    use `ImageMetadata.upscaled` for an upscaled copy.
    """
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise ImageError(f"cannot encode an array of shape {array.shape}: expected [H, W, 1|2|3|4]")
    if fmt == "PNG":
        if array.dtype == np.uint16:
            import tensorflow as tf

            data = tf.io.encode_png(array).numpy()
        else:
            data = _pil_bytes(array, "PNG", compress_level=1)
        return data if metadata is None else png_with_metadata(data, metadata)
    if array.dtype != np.uint8:
        raise ImageError(f"{fmt} stores 8 bits per channel; this image has 16. Write PNG to keep them.")
    if fmt == "JPEG":
        if array.shape[-1] in (2, 4):
            raise ImageError("JPEG cannot store the alpha channel. Write PNG or WebP to keep it.")
        return _pil_bytes(array, "JPEG", quality=quality, **_pil_metadata(metadata, "JPEG", array.shape[-1]))
    if fmt == "WEBP":
        if array.shape[-1] == 2:  # WebP has no gray + alpha mode
            array = np.concatenate([np.repeat(array[..., :1], 3, axis=-1), array[..., 1:]], axis=-1)
        return _pil_bytes(array, "WEBP", quality=quality, lossless=quality >= 100,
                          **_pil_metadata(metadata, "WEBP", array.shape[-1]))
    raise ImageError(f"unknown output format {fmt!r}; expected one of PNG, JPEG, WEBP")


def _pil_bytes(array: np.ndarray, fmt: str, **options) -> bytes:
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


def write_image(path: str | os.PathLike, array: np.ndarray, quality: int = 95,
                metadata: ImageMetadata | None = None) -> None:
    """Writes `array` to `path` (format from the extension) atomically, with `metadata` (see
    `encode_image`; None: none)."""
    path = Path(path)
    data = encode_image(array, format_for(path), quality=quality, metadata=metadata)
    atomic_write_bytes(path, data)


def png_header(width: int, height: int, bit_depth: int = 8, color_type: int = 2) -> bytes:
    """The first 33 bytes of a PNG (signature + IHDR), e.g. to test huge-dimension headers."""
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return PNG_SIGNATURE + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


# --- metadata -------------------------------------------------------------------------------------
_EXIF_PREFIX = b"Exif\x00\x00"
_XMP_KEYWORD = "XML:com.adobe.xmp"  # the PNG iTXt keyword of an XMP packet (XMP spec, part 3)
_PNG_COLOUR_CHUNKS = (b"cICP", b"sRGB", b"gAMA", b"cHRM")  # kept as they came, in PNGs only
_MAX_INFLATED = 64 << 20  # largest compressed PNG chunk we inflate (ICC profiles, text): 64 MiB
_INCH = 0.0254  # metres


@dataclasses.dataclass(frozen=True)
class ImageMetadata:
    """What an image file says besides its pixels, as `read_metadata` finds it.

    Attributes:
      icc_profile: the embedded ICC profile's bytes as they came (PNG iCCP inflated, JPEG APP2
        segments joined, WebP ICCP), or None.
      exif: the EXIF block as TIFF bytes (`II*\\0...` or `MM\\0*...`, JPEG's `Exif\\0\\0` prefix
        removed), or None.
      xmp: the XMP packet (UTF-8 XML bytes), or None.
      text: PNG text chunks (tEXt, zTXt, iTXt) as (keyword, text) pairs in file order, XMP left out.
      dpi: (x, y) pixels per inch (PNG pHYs in metres, JPEG JFIF density; else EXIF's
        X/YResolution, e.g. in WebPs), or None.
      png_chunks: PNG colour chunks (cICP, sRGB, gAMA, cHRM) as (type, body) pairs, written back
        to PNGs only.
      size: (width, height) of the stored pixels, before any EXIF orientation.
    """

    icc_profile: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    text: tuple[tuple[str, str], ...] = ()
    dpi: tuple[float, float] | None = None
    png_chunks: tuple[tuple[bytes, bytes], ...] = ()
    size: tuple[int, int] | None = None

    @property
    def orientation(self) -> int:
        """The EXIF orientation (1-8; 1 when there is none or it cannot be read)."""
        value = _exif_field(self.exif, 0, 0x0112) if self.exif else None
        return value if value in range(1, 9) else 1

    def upscaled(self, width: int, height: int) -> ImageMetadata:
        """The metadata of an upscaled copy whose upright pixels are `width x height`.

        The copy is upright (the orientation was applied on reading): EXIF orientation becomes 1
        (and the EXIF thumbnail, stored in the old orientation, is unlinked when it was not 1),
        EXIF pixel dimensions become `width x height`, and DPI (pHYs/JFIF and EXIF X/YResolution)
        is multiplied by the scale on each axis, so the print size stays the same. An EXIF block
        whose structure cannot be followed is dropped rather than written with a stale orientation.
        The rest is kept as it came.
        """
        if self.size is None:
            raise ValueError("ImageMetadata.upscaled needs the source size; read it with read_metadata")
        w, h = self.size
        turned = self.orientation in (5, 6, 7, 8)  # the upright image is the stored one transposed
        if turned:
            w, h = h, w
        sx, sy = width / w, height / h
        dpi = self.dpi
        if dpi is not None:
            dpi = (dpi[1], dpi[0]) if turned else dpi
            dpi = (dpi[0] * sx, dpi[1] * sy)
        exif = self.exif and _patch_exif(self.exif, width, height, (sy, sx) if turned else (sx, sy))
        return dataclasses.replace(self, exif=exif, dpi=dpi, size=(width, height))


NO_METADATA = ImageMetadata()


def read_metadata(data: bytes, name: str = "image") -> ImageMetadata:
    """The metadata of an encoded image, read from its header and chunks: no pixel is decoded.

    PNGs are read chunk by chunk (so text after the pixels counts too); other formats through
    Pillow's header parsers.

    Raises:
      ImageError: as `read_header`.
    """
    if _png_bit_depth(data) is not None:
        return _png_metadata(data, name)
    header = read_header(data, name, max_pixels=None)  # the callers apply their own pixel limits
    width, height = header.width, header.height
    try:
        with Image.open(io.BytesIO(data)) as image:
            info = dict(image.info)
    except Exception as e:  # read_header opened it already: this is a corrupt header Pillow read lazily
        raise ImageError(f"{name}: image header is corrupt or truncated ({e})") from e
    exif = info.get("exif") or None
    if exif is not None and exif.startswith(_EXIF_PREFIX):
        exif = exif[len(_EXIF_PREFIX):]
    xmp = info.get("xmp") or None
    dpi = info.get("dpi")
    if dpi is not None and not (len(dpi) == 2 and all(float(v) > 0 for v in dpi)):
        dpi = None
    exif = bytes(exif) if exif else None
    return ImageMetadata(
        icc_profile=info.get("icc_profile") or None,
        exif=exif,
        xmp=(xmp.encode("utf-8") if isinstance(xmp, str) else bytes(xmp)) if xmp else None,
        dpi=(float(dpi[0]), float(dpi[1])) if dpi is not None else exif and _exif_dpi(exif),
        size=(width, height),
    )


def _icc_fits(profile: bytes, channels: int) -> bool:
    """Whether an ICC profile describes pixels of `channels` channels (its header's colour space:
    'RGB ' for RGB(A), 'GRAY' for gray(+alpha)); a CMYK JPEG's profile does not fit its RGB copy."""
    space = profile[16:20] if len(profile) >= 128 else b""
    return space == (b"GRAY" if channels in (1, 2) else b"RGB ")


def _pil_metadata(metadata: ImageMetadata | None, fmt: str, channels: int) -> dict:
    """Pillow `save` options embedding `metadata` in a JPEG or WebP."""
    if metadata is None:
        return {}
    options = {}
    # A JPEG segment holds 65533 bytes: EXIF and XMP (one segment each, unlike ICC profiles) from a
    # PNG or WebP that are larger do not fit, and are left out rather than failing the image.
    limit = 65533 - 29 if fmt == "JPEG" else None  # 29: the longer of the two segment headers (XMP's)
    if metadata.icc_profile and _icc_fits(metadata.icc_profile, channels):
        options["icc_profile"] = metadata.icc_profile
    if metadata.exif and (limit is None or len(metadata.exif) + 6 <= limit):
        options["exif"] = _EXIF_PREFIX + metadata.exif  # Pillow drops the prefix for WebP
    if metadata.xmp and (limit is None or len(metadata.xmp) <= limit):
        options["xmp"] = metadata.xmp
    if metadata.dpi and fmt == "JPEG":
        options["dpi"] = metadata.dpi
    return options


# PNG chunks (PNG spec, 3rd edition, section 11)
def _png_chunks(data: bytes):
    """(type, body) of each chunk after the signature, up to IEND or the end of the data."""
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        yield kind, data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IEND":
            return


def _inflate(body: bytes) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(body, _MAX_INFLATED)
    if inflater.unconsumed_tail:
        raise ValueError(f"inflates to more than {_MAX_INFLATED} bytes")
    return out


def _png_metadata(data: bytes, name: str) -> ImageMetadata:
    icc = exif = xmp = dpi = None
    text, colour = [], []
    for kind, body in _png_chunks(data):
        try:
            if kind == b"iCCP":
                icc = _inflate(body[body.index(b"\x00") + 2:])
            elif kind == b"eXIf":
                exif = body[len(_EXIF_PREFIX):] if body.startswith(_EXIF_PREFIX) else body
            elif kind == b"pHYs" and len(body) == 9 and body[8] == 1:  # unit 1: per metre
                x, y = struct.unpack(">II", body[:8])
                dpi = (x * _INCH, y * _INCH) if x and y else None
            elif kind in (b"tEXt", b"zTXt"):
                key, _, value = body.partition(b"\x00")
                value = _inflate(value[1:]) if kind == b"zTXt" else value
                text.append((key.decode("latin-1"), value.decode("latin-1")))
            elif kind == b"iTXt":
                key, _, rest = body.partition(b"\x00")
                compressed, rest = rest[0], rest[2:]
                _, _, rest = rest.partition(b"\x00")  # language tag
                _, _, value = rest.partition(b"\x00")  # translated keyword
                value = _inflate(value) if compressed else value
                if key.decode("latin-1") == _XMP_KEYWORD:
                    xmp = value
                else:
                    text.append((key.decode("latin-1"), value.decode("utf-8")))
            elif kind in _PNG_COLOUR_CHUNKS:
                colour.append((kind, body))
        except (ValueError, IndexError, zlib.error):  # one broken ancillary chunk: a reader skips it
            continue
    width, height = struct.unpack(">II", data[16:24])
    exif = exif or None
    dpi = dpi or (exif and _exif_dpi(exif))
    return ImageMetadata(icc, exif, xmp or None, tuple(text), dpi, tuple(colour), (width, height))


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_with_metadata(png: bytes, metadata: ImageMetadata) -> bytes:
    """PNG bytes with `metadata`'s chunks (see `encode_image`) inserted after IHDR (before PLTE and
    IDAT, where iCCP and the colour chunks must be); the pixel data is not touched (no decoding),
    e.g. for a server's PNG answer."""
    if _png_bit_depth(png) is None:
        raise ImageError("png_with_metadata: `png` is not PNG data")
    channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(png[25], 3)  # IHDR colour type
    chunks = []
    if metadata.icc_profile and _icc_fits(metadata.icc_profile, channels):
        chunks.append(_png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(metadata.icc_profile)))
        colour = [(k, b) for k, b in metadata.png_chunks if k != b"sRGB"]  # sRGB and iCCP exclude each other
    else:
        colour = list(metadata.png_chunks)
    chunks += [_png_chunk(kind, body) for kind, body in colour]
    if metadata.dpi:
        ppm = [max(1, round(v / _INCH)) for v in metadata.dpi]
        chunks.append(_png_chunk(b"pHYs", struct.pack(">IIB", *ppm, 1)))
    if metadata.exif:
        chunks.append(_png_chunk(b"eXIf", metadata.exif))
    if metadata.xmp:
        chunks.append(_png_chunk(b"iTXt", _XMP_KEYWORD.encode() + b"\x00\x00\x00\x00\x00" + metadata.xmp))
    for key, value in metadata.text:
        try:
            chunks.append(_png_chunk(b"tEXt", key.encode("latin-1") + b"\x00" + value.encode("latin-1")))
        except UnicodeEncodeError:  # iTXt holds UTF-8
            chunks.append(_png_chunk(b"iTXt", key.encode("latin-1") + b"\x00\x00\x00\x00\x00" + value.encode()))
    end_of_ihdr = len(PNG_SIGNATURE) + 8 + 13 + 4
    return png[:end_of_ihdr] + b"".join(chunks) + png[end_of_ihdr:]


# EXIF (a TIFF structure: CIPA DC-008, EXIF 2.32, section 4.6)
_SHORT, _LONG, _RATIONAL = 3, 4, 5
_EXIF_IFD = 0x8769


def _ifd_entries(tiff: bytes, offset: int, endian: str):
    """(position of the entry, tag, type, count, value-or-offset) of each entry of the IFD at `offset`."""
    (count,) = struct.unpack(endian + "H", tiff[offset:offset + 2])
    if offset + 2 + 12 * count + 4 > len(tiff):
        raise ValueError("IFD runs past the end of the EXIF block")
    for i in range(count):
        pos = offset + 2 + 12 * i
        tag, kind, n = struct.unpack(endian + "HHI", tiff[pos:pos + 8])
        value = struct.unpack(endian + ("H" if kind == _SHORT else "I"), tiff[pos + 8:pos + (10 if kind == _SHORT else 12)])[0]
        yield pos, tag, kind, n, value


def _tiff_header(tiff: bytes) -> tuple[str, int]:
    endian = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if endian is None or len(tiff) < 8 or struct.unpack(endian + "H", tiff[2:4])[0] != 42:
        raise ValueError("not a TIFF header")
    return endian, struct.unpack(endian + "I", tiff[4:8])[0]


def _exif_field(tiff: bytes, ifd: int, tag: int) -> int | None:
    """An inline SHORT/LONG value of IFD0 (ifd=0) or the Exif IFD (ifd=_EXIF_IFD), or None."""
    try:
        endian, offset = _tiff_header(tiff)
        if ifd:
            offset = next(v for _, t, _, _, v in _ifd_entries(tiff, offset, endian) if t == ifd)
        return next((v for _, t, k, n, v in _ifd_entries(tiff, offset, endian)
                     if t == tag and k in (_SHORT, _LONG) and n == 1), None)
    except (ValueError, StopIteration, struct.error):
        return None


def _exif_dpi(tiff: bytes) -> tuple[float, float] | None:
    """(x, y) pixels per inch from IFD0's X/YResolution and ResolutionUnit (2 inch, 3 cm), or None."""
    try:
        endian, ifd0 = _tiff_header(tiff)
        entries = {tag: (kind, value) for _, tag, kind, _, value in _ifd_entries(tiff, ifd0, endian)}
        per_inch = {2: 1.0, 3: 2.54}[entries.get(0x0128, (_SHORT, 2))[1]]
        dpi = []
        for tag in (0x011A, 0x011B):
            kind, offset = entries[tag]
            num, den = struct.unpack(endian + "II", tiff[offset:offset + 8]) if kind == _RATIONAL else (0, 0)
            dpi.append(num / den * per_inch if num and den else None)
    except (ValueError, KeyError, struct.error):
        return None
    return None if None in dpi else (dpi[0], dpi[1])


def _patch_exif(tiff: bytes, width: int, height: int, scale: tuple[float, float]) -> bytes | None:
    """EXIF bytes with orientation 1, pixel dimensions `width x height` and X/YResolution times
    `scale`, changed in place so everything else (maker notes, offsets) stays byte for byte.
    None when the structure cannot be followed."""
    out = bytearray(tiff)
    try:
        endian, ifd0 = _tiff_header(tiff)

        def put_integer(pos: int, value: int) -> None:  # SHORT or LONG, count 1, inline
            kind = _SHORT if value < 65536 and struct.unpack(endian + "H", out[pos + 2:pos + 4])[0] == _SHORT else _LONG
            value_bytes = struct.pack(endian + ("HH" if kind == _SHORT else "I"), *((value, 0) if kind == _SHORT else (value,)))
            out[pos + 2:pos + 12] = struct.pack(endian + "HI", kind, 1) + value_bytes

        def scale_rational(offset: int, factor: float) -> None:
            num, den = struct.unpack(endian + "II", tiff[offset:offset + 8])
            if not den:
                return
            value = num / den * factor
            num, den = (round(value * den), den) if value * den < 2**32 else (round(value), 1)
            out[offset:offset + 8] = struct.pack(endian + "II", min(num, 2**32 - 1), den)

        exif_ifd = None
        for pos, tag, kind, n, value in _ifd_entries(tiff, ifd0, endian):
            if tag == 0x0112 and kind == _SHORT and value != 1:  # orientation
                out[pos + 8:pos + 10] = struct.pack(endian + "H", 1)
                end = ifd0 + 2 + 12 * struct.unpack(endian + "H", tiff[ifd0:ifd0 + 2])[0]
                out[end:end + 4] = b"\x00\x00\x00\x00"  # unlink IFD1: its thumbnail has the old orientation
            elif tag in (0x0100, 0x0101) and kind in (_SHORT, _LONG) and n == 1:  # ImageWidth, ImageLength
                put_integer(pos, width if tag == 0x0100 else height)
            elif tag in (0x011A, 0x011B) and kind == _RATIONAL and n == 1:  # XResolution, YResolution
                scale_rational(value, scale[0] if tag == 0x011A else scale[1])
            elif tag == _EXIF_IFD:
                exif_ifd = value
        if exif_ifd is not None:
            for pos, tag, kind, n, _ in _ifd_entries(tiff, exif_ifd, endian):
                if tag in (0xA002, 0xA003) and kind in (_SHORT, _LONG) and n == 1:  # PixelX/YDimension
                    put_integer(pos, width if tag == 0xA002 else height)
    except (ValueError, struct.error):
        return None
    return bytes(out)


def upright(data: bytes, name: str = "image") -> bytes:
    """Encoded image bytes whose stored pixels are as displayed: `data` itself when its EXIF
    orientation is 1 (or absent), else a PNG of the turned pixels (for decoders that ignore EXIF,
    such as the served `encoded_image` signature's).

    Raises:
      ImageError: as `decode_image`.
    """
    if read_metadata(data, name).orientation == 1:
        return data
    return encode_image(decode_image(data, name), "PNG")


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """`[H, W, C]` as stored -> as displayed under EXIF `orientation` (what `ImageOps.exif_transpose` does)."""
    turn = {
        2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 2).transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1),
    }.get(orientation)
    return array if turn is None else np.ascontiguousarray(turn(array))
