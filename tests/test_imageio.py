import numpy as np
import pytest
from PIL import Image

from sr_tf.imageio import ImageError, encode_image, png_header, read_image, write_image


@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=np.uint8).reshape(2, 4, 3),
        np.arange(32, dtype=np.uint8).reshape(2, 4, 4),
        np.arange(8, dtype=np.uint8).reshape(2, 4, 1),
        np.arange(16, dtype=np.uint8).reshape(2, 4, 2),
        (np.arange(24, dtype=np.uint16) * 2731).reshape(2, 4, 3),
        (np.arange(8, dtype=np.uint16) * 8191).reshape(2, 4, 1),
        (np.arange(32, dtype=np.uint16) * 2000).reshape(2, 4, 4),
    ],
)
def test_png_round_trip_keeps_channels_and_depth(tmp_path, array):
    path = tmp_path / "x.png"
    write_image(path, array)
    back = read_image(path)
    assert back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path):
    write_image(tmp_path / "a.webp", np.zeros((4, 4, 3), np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["a.webp"]


def test_jpeg_refuses_alpha_and_16_bit_instead_of_dropping_them():
    with pytest.raises(ImageError, match="alpha"):
        encode_image(np.zeros((2, 2, 4), np.uint8), "JPEG")
    with pytest.raises(ImageError, match="16"):
        encode_image(np.zeros((2, 2, 3), np.uint16), "JPEG")


def test_exif_orientation_is_applied(tmp_path):
    image = Image.fromarray(np.zeros((2, 6, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    image.save(tmp_path / "r.jpg", exif=exif)
    assert read_image(tmp_path / "r.jpg").shape == (6, 2, 3)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"hello, not an image", "not an image"),
        (png_header(200_000, 200_000), "too large"),
        (png_header(300_000, 300_000, bit_depth=16), "too large"),
    ],
)
def test_bad_files_give_errors_naming_them(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as info:
        read_image(path)
    assert "bad.png" in str(info.value)


def test_truncated_png_is_reported(tmp_path):
    good = tmp_path / "g.png"
    write_image(good, np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    data = good.read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="t.png"):
        read_image(tmp_path / "t.png")


def test_read_header_reads_headers_only():
    import io
    import time

    from PIL import Image

    from sr_tf.imageio import ImageError, png_header, read_header

    # a PNG header claiming 100000 x 100000: sized from its IHDR, nothing decoded
    start = time.monotonic()
    big = read_header(png_header(100_000, 100_000), max_pixels=None)
    assert (big.width, big.height, big.format) == (100_000, 100_000, "PNG")
    with pytest.raises(ImageError, match=r"^x: image is 100000x100000 \(10000000000 pixels\), more than max_pixels="):
        read_header(png_header(100_000, 100_000), "x")  # the default limit: Pillow's bomb threshold
    buf = io.BytesIO()
    Image.new("RGB", (7, 5)).save(buf, format="JPEG")
    small = read_header(buf.getvalue())
    assert (small.width, small.height, small.format, small.mode) == (7, 5, "JPEG", "RGB")
    assert time.monotonic() - start < 1
    for data, reason in ((b"", "empty"), (b"not an image", "not an image")):
        try:
            read_header(data, "x")
        except ImageError as err:
            assert str(err).startswith("x: ") and reason in str(err)
        else:
            raise AssertionError("no error")
