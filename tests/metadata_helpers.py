"""Images carrying every kind of metadata sr-tf keeps, and field-by-field checks with Pillow.

`display_p3_profile()` builds a Display P3 ICC profile (ICC.1:2001-04, version 2.1 matrix/TRC
display profile) from its published D50-adapted colorants, so no profile file is downloaded.
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image, ImageCms, PngImagePlugin

# Display P3's colorants adapted to D50 (as in Apple's Display P3 profile); columns sum to D50.
P3_COLORANTS = {b"rXYZ": (0.5151, 0.2412, -0.0011), b"gXYZ": (0.2920, 0.6922, 0.0419),
                b"bXYZ": (0.1571, 0.0666, 0.7841)}
D50 = (0.9642, 1.0, 0.8249)
P3_DESCRIPTION = "Display P3 (sr-tf test)"
XMP = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
       b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
       b'xmlns:dc="http://purl.org/dc/elements/1.1/" dc:format="image/png"/></rdf:RDF></x:xmpmeta>'
       b'<?xpacket end="w"?>')
TEXT = {"Title": "A field", "Comment": "caf\u00e9 \u2014 em dash"}  # a tEXt, and an iTXt (\u2014 is not Latin-1)


def _s15f16(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def display_p3_profile() -> bytes:
    """A Display P3 ICC profile (D50 colorants, gamma 2.2 curves): RGB, display class, ~500 bytes."""
    desc_text = P3_DESCRIPTION.encode() + b"\x00"
    tags = {
        b"desc": b"desc\x00\x00\x00\x00" + struct.pack(">I", len(desc_text)) + desc_text
                 + b"\x00" * 8 + b"\x00" * 3 + b"\x00" * 67,
        b"cprt": b"text\x00\x00\x00\x00" + b"No copyright, test data\x00",
        b"wtpt": b"XYZ \x00\x00\x00\x00" + b"".join(map(_s15f16, D50)),
        **{k: b"XYZ \x00\x00\x00\x00" + b"".join(map(_s15f16, v)) for k, v in P3_COLORANTS.items()},
        **{k: b"curv\x00\x00\x00\x00" + struct.pack(">IH", 1, round(2.2 * 256)) for k in (b"rTRC", b"gTRC", b"bTRC")},
    }
    table, body, offset = [], b"", 128 + 4 + 12 * len(tags)
    for sig, data in tags.items():
        data += b"\x00" * (-len(data) % 4)
        table.append(struct.pack(">4sII", sig, offset + len(body), len(data)))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I4sI4s4s4s", size, b"lcms", 0x02100000, b"mntr", b"RGB ", b"XYZ ")
              + struct.pack(">6H", 2026, 12, 6, 0, 0, 0) + b"acsp" + b"APPL" + b"\x00" * 4 + b"\x00" * 8
              + b"\x00" * 8 + struct.pack(">I", 0) + b"".join(map(_s15f16, D50)) + b"\x00" * 4 + b"\x00" * 44)
    assert len(header) == 128, len(header)
    return header + struct.pack(">I", len(tags)) + b"".join(table) + body


def exif_block(orientation: int, width: int, height: int, dpi: float = 72.0) -> Image.Exif:
    """EXIF with camera fields, an orientation, pixel dimensions and X/YResolution."""
    exif = Image.Exif()
    exif[0x010F] = "sr-tf test camera"  # Make
    exif[0x0110] = "P3 model"  # Model
    exif[0x0112] = orientation
    exif[0x011A] = exif[0x011B] = dpi
    exif[0x0128] = 2  # ResolutionUnit: inch
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = "2026:12:06 12:00:00"  # DateTimeOriginal
    sub[0xA002], sub[0xA003] = width, height
    return exif


def tagged_photo(fmt: str, array: np.ndarray, orientation: int = 1, dpi: float = 72.0,
                 icc: bytes | None = None) -> bytes:
    """`array` encoded as `fmt` with a P3 profile (or `icc`), EXIF, XMP, DPI and (PNG) text chunks."""
    image = Image.fromarray(array)
    options = {"icc_profile": icc or display_p3_profile(), "exif": exif_block(orientation, image.width, image.height, dpi),
               "xmp": XMP}
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        for key, value in TEXT.items():
            info.add_text(key, value)  # Pillow writes an iTXt for text outside Latin-1
        info.add_itxt("XML:com.adobe.xmp", XMP.decode())
        options.update(pnginfo=info, dpi=(dpi, dpi))
        del options["xmp"]
    elif fmt == "JPEG":
        options.update(dpi=(dpi, dpi), quality=95)
    elif fmt == "WEBP":
        options.update(lossless=True)
    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


def assert_metadata_kept(data: bytes, source_fmt: str, size: tuple[int, int], scale: float,
                         dpi: float = 72.0, icc: bytes | None = None) -> None:
    """Opens an output with Pillow and checks each field against what `tagged_photo` wrote."""
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == size
        assert image.info.get("icc_profile") == (icc or display_p3_profile())
        exif = image.getexif()
        assert exif[0x0112] == 1
        assert (exif[0x010F], exif[0x0110]) == ("sr-tf test camera", "P3 model")
        assert float(exif[0x011A]) == float(exif[0x011B]) == dpi * scale
        sub = exif.get_ifd(0x8769)
        assert sub[0x9003] == "2026:12:06 12:00:00"
        assert (sub[0xA002], sub[0xA003]) == size
        xmp = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
        assert (xmp.encode() if isinstance(xmp, str) else xmp) == XMP
        if image.format in ("PNG", "JPEG"):
            assert np.allclose(image.info["dpi"], (dpi * scale, dpi * scale), atol=0.02)
        if image.format == "PNG" and source_fmt == "PNG":
            image.load()
            assert {k: image.text[k] for k in TEXT} == TEXT


def p3_profile_reads_as_p3(profile: bytes) -> bool:
    """littleCMS reads the profile, and converts P3 green to an sRGB green outside sRGB's gamut."""
    p3 = ImageCms.ImageCmsProfile(io.BytesIO(profile))
    assert ImageCms.getProfileDescription(p3).strip() == P3_DESCRIPTION
    srgb = ImageCms.createProfile("sRGB")
    green = ImageCms.profileToProfile(Image.new("RGB", (1, 1), (0, 255, 0)), p3, srgb)
    r, g, b = green.getpixel((0, 0))
    return g == 255 and r == 0 and b < 80  # clipped: P3 green is greener than sRGB's
