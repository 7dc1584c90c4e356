"""SavedModel export: signatures equal the Keras model after reload; images keep their modes."""

from __future__ import annotations

import io
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from sr_tf.cli import main
from sr_tf.export import WARMUP_FILE, ExportConfig, export_savedmodel, read_warmup_requests
from sr_tf.models import SRVGGNetCompact


def _expected(model, pixels):
    """Independent reference: the Keras model on [0, 1] inputs, scaled to [0, 255], clipped, rounded."""
    out = model(np.clip(pixels, 0, 255) / 255.0).numpy()
    return np.round(np.clip(out * 255.0, 0, 255))


def _expected_grey(model, grey):
    """A grey `[H, W]` uint8 image the way PIL turns RGB into "L": the model's RGB output, BT.601 luma, rounded."""
    out = model(np.repeat(grey[None, ..., None], 3, -1).astype(np.float32) / 255.0).numpy()[0]
    return np.round(np.clip(out @ np.array([0.299, 0.587, 0.114]) * 255.0, 0, 255))


def _close(actual, desired):
    # graph and eager float32 kernels may move a value across a .5 rounding boundary
    diff = np.abs(np.asarray(actual, np.float64) - desired)
    assert actual.shape == desired.shape and diff.max() <= 1 and np.mean(diff > 0) < 1e-3


def _png(array, mode=None):
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    m = SRVGGNetCompact(num_feat=8, num_conv=1, upscale=4)
    m(np.zeros((1, 4, 4, 3), np.float32))
    return m


@pytest.fixture(scope="module")
def tiled(model, tmp_path_factory):
    """Exported with 8-pixel tiles and 6 pixels of context: tiles are blended over 3 pixels each side of a
    cut, which leaves 3 pixels of context there, the 3-conv model's receptive radius (so tiled == untiled)."""
    path = export_savedmodel(model, tmp_path_factory.mktemp("m") / "tiny" / "3", ExportConfig(tile_size=8, tile_pad=6))
    return path, tf.saved_model.load(str(path))


def test_version_layout_and_warmup_records(tiled):
    path, _ = tiled
    assert path.name == "3" and (path / "saved_model.pb").is_file() and (path / "variables").is_dir()
    requests = read_warmup_requests(path)
    assert (path / WARMUP_FILE).is_file()
    assert sorted(r.model_spec.signature_name for r in requests) == ["encoded_image", "serving_default"]
    assert all(r.model_spec.name == "tiny" for r in requests)
    assert not [p for p in os.listdir(path.parent) if p.startswith(".")]  # no temp dir left


def test_serving_default_equals_keras_with_tiling(model, tiled):
    _, loaded = tiled
    x = np.random.default_rng(0).uniform(-20, 280, (2, 21, 13, 3)).astype(np.float32)  # 3x2 tiles, ragged edges
    out = loaded.signatures["serving_default"](images=tf.constant(x))["upscaled"].numpy()
    assert out.dtype == np.float32 and out.shape == (2, 84, 52, 3)
    assert out.min() >= 0 and out.max() <= 255 and np.array_equal(out, np.round(out))
    _close(out, _expected(model, x))


def test_untiled_export_equals_keras(model, tmp_path):
    path = export_savedmodel(model, tmp_path / "m" / "1", ExportConfig(tile_size=0, warmup=False))
    assert not (path / WARMUP_FILE).exists()
    x = np.random.default_rng(1).uniform(0, 255, (1, 9, 11, 3)).astype(np.float32)
    out = tf.saved_model.load(str(path)).signatures["serving_default"](images=tf.constant(x))["upscaled"].numpy()
    _close(out, _expected(model, x))


def test_encoded_rgb_and_jpeg(model, tiled):
    _, loaded = tiled
    fn = loaded.signatures["encoded_image"]
    rgb = np.random.default_rng(2).integers(0, 256, (10, 7, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95)
    jpeg_pixels = tf.io.decode_jpeg(buf.getvalue()).numpy()  # JPEG decoders differ slightly; use TF's
    out = fn(image_bytes=tf.constant([_png(rgb), buf.getvalue()]))["upscaled_bytes"].numpy()
    png_out, jpeg_out = (Image.open(io.BytesIO(b)) for b in out)
    assert png_out.format == "PNG" and png_out.mode == "RGB" and png_out.size == (28, 40)
    _close(np.array(png_out).astype(np.float64), _expected(model, rgb[None].astype(np.float32))[0])
    _close(np.array(jpeg_out).astype(np.float64), _expected(model, jpeg_pixels[None].astype(np.float32))[0])


def test_rgba_keeps_alpha_and_gray_stays_gray(model, tiled):
    _, loaded = tiled
    fn = loaded.signatures["encoded_image"]
    rng = np.random.default_rng(4)
    rgba = rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    gray = rng.integers(0, 256, (6, 5), dtype=np.uint8)
    la = rng.integers(0, 256, (6, 5, 2), dtype=np.uint8)
    outs = fn(image_bytes=tf.constant([_png(rgba, "RGBA"), _png(gray, "L"), _png(la, "LA")]))["upscaled_bytes"]
    rgba_out, gray_out, la_out = (Image.open(io.BytesIO(b)) for b in outs.numpy())
    assert (rgba_out.mode, gray_out.mode, la_out.mode) == ("RGBA", "L", "LA")
    assert rgba_out.size == gray_out.size == (20, 24)
    # colour: the model on RGB; alpha: the model on alpha repeated to 3 channels, then BT.601 luma
    want_rgb = _expected(model, rgba[None, ..., :3].astype(np.float32))[0]
    want_alpha = _expected_grey(model, rgba[..., 3])
    _close(np.array(rgba_out)[..., :3].astype(np.float64), want_rgb)
    _close(np.array(rgba_out)[..., 3].astype(np.float64), want_alpha)
    want_gray = _expected_grey(model, gray)
    _close(np.array(gray_out).astype(np.float64), want_gray)


def test_16_bit_png_stays_16_bit_at_full_precision(tiled, model):
    _, loaded = tiled
    # values that are not multiples of 257: 8-bit precision would lose them
    rgb16 = np.random.default_rng(5).integers(0, 65536, (5, 6, 3)).astype(np.uint16)
    assert (rgb16 % 257 != 0).mean() > 0.99
    data = tf.io.encode_png(rgb16).numpy()
    assert data[24] == 16  # the IHDR bit depth of the input
    out = loaded.signatures["encoded_image"](image_bytes=tf.constant([data]))["upscaled_bytes"].numpy()[0]
    assert out[24] == 16
    out16 = tf.io.decode_png(out, dtype=tf.uint16).numpy().astype(np.float64)
    assert out16.shape == (20, 24, 3)
    assert (out16 % 257 != 0).mean() > 0.5  # not 8-bit values scaled up
    want = np.round(np.clip(model(rgb16[None].astype(np.float32) / 65535.0).numpy()[0] * 65535.0, 0, 65535))
    diff = np.abs(out16 - want)
    assert diff.max() <= 2 and np.mean(diff > 1) < 1e-3, diff.max()  # float32 graph vs eager: a count or two


def test_bad_paths_are_refused(model, tmp_path):
    with pytest.raises(ValueError, match="positive integer version"):
        export_savedmodel(model, tmp_path / "m" / "latest")
    with pytest.raises(ValueError, match="tile_size"):
        ExportConfig(tile_size=-1)
    (tmp_path / "m" / "1").mkdir(parents=True)
    with pytest.raises(FileExistsError):
        export_savedmodel(model, tmp_path / "m" / "1")


def test_cli_export_from_a_keras_file(model, tmp_path, capsys):
    keras_file = tmp_path / "tiny.keras"
    model.save(keras_file)
    out = tmp_path / "models" / "tiny" / "1"
    assert main(["export", "--model", str(keras_file), "--out", str(out), "--tile-size", "0", "--no-warmup"]) == 0
    assert "serving_default" in capsys.readouterr().out
    x = np.random.default_rng(6).uniform(0, 255, (1, 5, 5, 3)).astype(np.float32)
    got = tf.saved_model.load(str(out)).signatures["serving_default"](images=tf.constant(x))["upscaled"].numpy()
    _close(got, _expected(model, x))
    assert main(["export", "--model", str(keras_file), "--out", str(out)]) == 2  # exists already
    assert "give --overwrite to replace it" in capsys.readouterr().err  # the flag, not the library's overwrite=True


def test_short_junk_gets_the_decoders_words(tiled):
    """TF Serving calls the graph directly: an input shorter than a PNG header must reach decode_image's
    own error, not fail reading byte 24 of the header."""
    _, loaded = tiled
    with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format"):
        loaded.signatures["encoded_image"](image_bytes=tf.constant([b"not a picture"]))
