"""Metadata kept by sr_tf.imageio: ICC, EXIF, XMP, PNG text and DPI, checked field by field with Pillow."""

import io

import numpy as np
import pytest
from metadata_helpers import (
    TEXT,
    assert_metadata_kept,
    display_p3_profile,
    p3_profile_reads_as_p3,
    tagged_photo,
)
from PIL import Image, ImageOps

from sr_tf.imageio import ImageMetadata, decode_image, encode_image, read_metadata

FORMATS = ("PNG", "JPEG", "WEBP")
STORED = np.random.default_rng(0).integers(0, 256, (6, 4, 3), dtype=np.uint8)  # H 6, W 4 as stored


def x2(array):
    return array.repeat(2, axis=0).repeat(2, axis=1)


def test_the_test_profile_is_display_p3():
    assert p3_profile_reads_as_p3(display_p3_profile())


@pytest.mark.parametrize("source", FORMATS)
@pytest.mark.parametrize("target", FORMATS)
def test_an_upscaled_p3_photo_keeps_its_metadata_in_every_format(source, target):
    data = tagged_photo(source, STORED, orientation=6)  # displayed turned: 6 wide, 4 high
    image = decode_image(data)
    assert image.shape == (4, 6, 3)
    out = x2(image)
    metadata = read_metadata(data).upscaled(out.shape[1], out.shape[0])
    encoded = encode_image(out, target, metadata=metadata)
    assert_metadata_kept(encoded, source, (12, 8), scale=2)
    with Image.open(io.BytesIO(encoded)) as written:  # upright, and viewers must not turn it again
        assert ImageOps.exif_transpose(written).size == (12, 8)


def test_png_text_and_colour_chunks_and_exif_bytes_survive_unchanged_but_for_the_updated_fields():
    data = tagged_photo("PNG", STORED, orientation=1)
    metadata = read_metadata(data)
    assert dict(metadata.text) == TEXT and "XML:com.adobe.xmp" not in dict(metadata.text)
    out = metadata.upscaled(8, 12)
    assert out.exif != metadata.exif and len(out.exif) == len(metadata.exif)  # patched in place
    changed = [i for i, (a, b) in enumerate(zip(metadata.exif, out.exif, strict=True)) if a != b]
    assert 0 < len(changed) <= 12, changed  # two resolutions (x2) and two pixel dimensions
    srgb = ImageMetadata(png_chunks=((b"gAMA", (45455).to_bytes(4, "big")),), size=(4, 6))
    with Image.open(io.BytesIO(encode_image(STORED, "PNG", metadata=srgb))) as written:
        assert written.info["gamma"] == pytest.approx(0.45455)


def test_16_bit_png_is_turned_by_its_orientation_too_and_keeps_its_profile():
    import tensorflow as tf

    deep = (STORED.astype(np.uint16) * 257)
    upright = decode_image(tagged_photo("PNG", STORED, orientation=6))
    plain = tf.io.encode_png(deep).numpy()
    metadata = read_metadata(tagged_photo("PNG", STORED, orientation=6))
    data = encode_image(deep, "PNG", metadata=metadata)  # the 16-bit encoder, with the chunks inserted
    back = decode_image(data)
    assert back.dtype == np.uint16 and back.shape == (4, 6, 3)
    np.testing.assert_array_equal(back // 257, upright)
    assert read_metadata(data).icc_profile == display_p3_profile() and read_metadata(plain).icc_profile is None


def test_a_profile_of_another_colour_space_is_not_attached():
    cmyk = bytearray(display_p3_profile())
    cmyk[16:20] = b"CMYK"
    metadata = ImageMetadata(icc_profile=bytes(cmyk), size=(4, 6))
    for fmt in FORMATS:
        with Image.open(io.BytesIO(encode_image(STORED, fmt, metadata=metadata))) as written:
            assert "icc_profile" not in written.info, fmt
    gray = ImageMetadata(icc_profile=display_p3_profile(), size=(4, 6))  # an RGB profile on gray pixels
    with Image.open(io.BytesIO(encode_image(STORED[..., :1], "PNG", metadata=gray))) as written:
        assert "icc_profile" not in written.info


def test_exif_that_cannot_be_followed_is_dropped_not_written_with_a_stale_orientation():
    metadata = ImageMetadata(exif=b"MM\x00*\x00\x00\x00\x08\x00\x05", size=(4, 6))  # 5 entries, none there
    assert metadata.upscaled(8, 12).exif is None
    with Image.open(io.BytesIO(encode_image(STORED, "JPEG"))) as written:
        assert not written.getexif() and "icc_profile" not in written.info


def test_exif_or_xmp_too_large_for_a_jpeg_segment_is_left_out_instead_of_failing_the_image():
    exif = read_metadata(tagged_photo("PNG", STORED)).exif
    metadata = ImageMetadata(exif=exif + b"\x00" * 70_000, xmp=b"x" * 70_000, icc_profile=display_p3_profile(),
                             size=(4, 6))
    with Image.open(io.BytesIO(encode_image(STORED, "JPEG", metadata=metadata))) as written:
        assert "exif" not in written.info and "xmp" not in written.info
        assert written.info["icc_profile"] == display_p3_profile()  # split over APP2 segments as needed
    with Image.open(io.BytesIO(encode_image(STORED, "PNG", metadata=metadata))) as written:
        assert len(written.info["exif"]) > 70_000
