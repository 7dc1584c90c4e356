import numpy as np
import pytest

from sr_tf.inference import Upscaler, upscale_image
from sr_tf.models import SRVGGNetCompact


def psnr(a, b):
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


@pytest.fixture(scope="module")
def nearest_x2():
    """SRVGGNetCompact with zero weights is exactly nearest-neighbour upsampling: outputs are known."""
    model = SRVGGNetCompact(num_feat=4, num_conv=1, upscale=2)
    model(np.zeros((1, 4, 4, 3), np.float32))
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    return Upscaler(model)


def nearest(x, s=2):
    return x.repeat(s, axis=0).repeat(s, axis=1)


@pytest.mark.parametrize("tile, pad", [(16, 8), (23, 10), (10, 9)])
def test_tiling_is_exact_when_the_pad_covers_the_receptive_field(tile, pad):
    # 4 stacked 3x3 convs see 4 pixels each way; blending uses outputs at least pad/2 from a cut
    # edge, so with pad >= 8 the tiled output must equal the untiled one to float precision.
    model = SRVGGNetCompact(num_feat=8, num_conv=2, upscale=4)
    image = np.random.default_rng(0).random((45, 37, 3), dtype=np.float32)
    upscaler = Upscaler(model)
    full = upscaler(image)
    calls = []
    tiled = upscaler(image, tile=tile, tile_pad=pad, on_tile=lambda done, total: calls.append((done, total)))
    assert tiled.shape == full.shape == (180, 148, 3)
    np.testing.assert_allclose(tiled, full, atol=1e-5)
    total = -(-45 // tile) * -(-37 // tile)
    assert calls[-1] == (total, total) and len(calls) == total


def test_tiling_without_context_shows_seams():
    """Pad 0 is measurably worse, so the checks here and below can fail."""
    model = SRVGGNetCompact(num_feat=8, num_conv=2, upscale=4)
    image = np.random.default_rng(0).random((45, 37, 3), dtype=np.float32)
    upscaler = Upscaler(model)
    assert psnr(upscaler(image), upscaler(image, tile=16, tile_pad=0)) < 50


@pytest.mark.large
def test_tiled_pretrained_model_is_seamless():
    """The published realesrgan-x4plus (a huge receptive field): small tiles, the default pad."""
    from sr_tf.runtime.catalogue import load_pretrained
    from tests.pretrained.test_catalogue import crops

    upscaler = Upscaler(load_pretrained("realesrgan-x4plus"))
    image = crops(64)[0]
    full = np.clip(upscaler(image), 0, 1)
    tiled = np.clip(upscaler(image, tile=32), 0, 1)
    assert psnr(full, tiled) >= 50


def test_rgba_keeps_alpha(nearest_x2):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    for mode in ("model", "bicubic"):
        out = upscale_image(nearest_x2, image, alpha_mode=mode)
        assert out.shape == (10, 14, 4) and out.dtype == np.uint8
        np.testing.assert_array_equal(out[..., :3], nearest(image[..., :3]))
        if mode == "model":
            np.testing.assert_array_equal(out[..., 3], nearest(image[..., 3]))
    opaque = image.copy()
    opaque[..., 3] = 255
    assert (upscale_image(nearest_x2, opaque)[..., 3] == 255).all()


def test_gray_in_gray_out(nearest_x2):
    image = np.random.default_rng(2).integers(0, 256, (6, 5), dtype=np.uint8)
    out = upscale_image(nearest_x2, image)
    assert out.shape == (12, 10, 1)
    np.testing.assert_array_equal(out[..., 0], nearest(image))
    ga = np.stack([image, image[::-1]], axis=-1)
    out = upscale_image(nearest_x2, ga)
    assert out.shape == (12, 10, 2)
    np.testing.assert_array_equal(out, nearest(ga))


def test_16_bit_stays_16_bit_with_full_precision(nearest_x2):
    # Values that 8 bits cannot hold (not multiples of 257) must come back unchanged.
    image = np.random.default_rng(3).integers(0, 65536, (4, 6, 3), dtype=np.uint16)
    out = upscale_image(nearest_x2, image)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, nearest(image))


def test_outscale_resizes_after_the_model(nearest_x2):
    image = np.full((10, 8, 3), 100, np.uint8)
    out = upscale_image(nearest_x2, image, outscale=3)
    assert out.shape == (30, 24, 3)
    assert np.abs(out.astype(int) - 100).max() <= 1
    assert upscale_image(nearest_x2, image, outscale=1.5).shape == (15, 12, 3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(image=np.zeros((4, 4, 5), np.uint8)), "shape"),
        (dict(image=np.zeros((4, 4, 3), np.int32)), "dtype"),
        (dict(image=np.zeros((4, 4, 3), np.uint8), alpha_mode="nearest"), "alpha_mode"),
        (dict(image=np.zeros((4, 4, 3), np.uint8), outscale=0), "outscale"),
        (dict(image=np.zeros((4, 4, 3), np.uint8), tile=-1), "tile"),
    ],
)
def test_bad_arguments(nearest_x2, kwargs, message):
    with pytest.raises(ValueError, match=message):
        upscale_image(nearest_x2, **kwargs)
