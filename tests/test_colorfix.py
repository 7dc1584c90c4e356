"""Colour fix (sr_tf.colorfix): StableSR's functions as the oracle, a colour-shifting model, the SavedModel."""

import numpy as np
import pytest
import tensorflow as tf

from sr_tf.colorfix import adain, color_fix, wavelet_blur, wavelet_reconstruction
from sr_tf.inference import Upscaler, upscale_image
from sr_tf.models import SRVGGNetCompact

OFFSET = np.array([0.08, -0.05, 0.03], np.float32)  # the model's colour shift, per channel
SCALE = 2


def stablesr_oracle():
    """StableSR's `ldm/modules/colorfix.py` (Wang et al. 2023, Apache-2.0) functions, in PyTorch, NCHW."""
    import torch
    import torch.nn.functional as F

    def calc_mean_std(feat, eps=1e-5):
        b, c = feat.size()[:2]
        feat_var = feat.view(b, c, -1).var(dim=2) + eps
        return feat.view(b, c, -1).mean(dim=2).view(b, c, 1, 1), feat_var.sqrt().view(b, c, 1, 1)

    def adaptive_instance_normalization(content_feat, style_feat):
        size = content_feat.size()
        style_mean, style_std = calc_mean_std(style_feat)
        content_mean, content_std = calc_mean_std(content_feat)
        normalized_feat = (content_feat - content_mean.expand(size)) / content_std.expand(size)
        return normalized_feat * style_std.expand(size) + style_mean.expand(size)

    def wavelet_blur(image, radius):
        kernel = torch.tensor([[0.0625, 0.125, 0.0625], [0.125, 0.25, 0.125], [0.0625, 0.125, 0.0625]],
                              dtype=image.dtype)[None, None].repeat(3, 1, 1, 1)
        image = F.pad(image, (radius, radius, radius, radius), mode="replicate")
        return F.conv2d(image, kernel, groups=3, dilation=radius)

    def wavelet_decomposition(image, levels=5):
        high_freq = torch.zeros_like(image)
        for i in range(levels):
            low_freq = wavelet_blur(image, radius=2**i)
            high_freq += image - low_freq
            image = low_freq
        return high_freq, low_freq

    def wavelet_reconstruction(content_feat, style_feat):
        content_high_freq, _ = wavelet_decomposition(content_feat)
        _, style_low_freq = wavelet_decomposition(style_feat)
        return content_high_freq + style_low_freq

    def nhwc(fn):
        def run(a, b):
            t = lambda x: torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # noqa: E731
            return fn(t(a), t(b)).numpy().transpose(0, 2, 3, 1)
        return run

    return nhwc(adaptive_instance_normalization), nhwc(wavelet_reconstruction)


def test_adain_and_wavelet_match_stablesr():
    rng = np.random.default_rng(0)
    out, ref = rng.uniform(0, 1, (2, 2, 37, 45, 3)).astype(np.float32)  # smaller than the blur's reach too
    oracle_adain, oracle_wavelet = stablesr_oracle()
    np.testing.assert_allclose(adain(out, ref).numpy(), oracle_adain(out, ref), atol=1e-5)
    np.testing.assert_allclose(wavelet_reconstruction(out, ref).numpy(), oracle_wavelet(out, ref), atol=1e-5)


@pytest.fixture(scope="module")
def shifting_models():
    """(plain, shifted): x2 nearest upsampling, and the same plus OFFSET on each channel."""
    models = []
    for offset in (np.zeros(3, np.float32), OFFSET):
        model = SRVGGNetCompact(num_feat=4, num_conv=1, upscale=SCALE)
        model(np.zeros((1, 4, 4, 3), np.float32))
        weights = [np.zeros_like(w) for w in model.get_weights()]
        weights[-1] = np.tile(offset, SCALE * SCALE)  # conv_last's bias; pixel shuffle: channel = k % 3
        model.set_weights(weights)
        models.append(model)
    return models


def test_adain_and_wavelet_remove_a_models_colour_shift_exactly(shifting_models):
    plain, shifted = shifting_models
    image = np.random.default_rng(1).uniform(0.2, 0.8, (12, 10, 3)).astype(np.float32)
    raw = Upscaler(shifted)(image)
    np.testing.assert_allclose((raw - Upscaler(plain)(image)).mean(axis=(0, 1)), OFFSET, atol=1e-6)
    for method in ("adain", "wavelet"):
        fixed = Upscaler(shifted, color_fix=method)(image)
        np.testing.assert_allclose(fixed, Upscaler(plain, color_fix=method)(image), atol=1e-5)
        mean_error = np.abs(fixed.mean(axis=(0, 1)) - image.mean(axis=(0, 1)))
        assert mean_error.max() < 2e-3, (method, mean_error)  # the shift is gone, not merely smaller


def test_wavelet_keeps_the_models_high_frequencies():
    rng = np.random.default_rng(2)
    source = rng.uniform(0, 1, (1, 24, 24, 3)).astype(np.float32)
    detail = 0.2 * (np.indices((48, 48)).sum(axis=0)[None, :, :, None] % 2)  # a checkerboard the model adds
    output = tf.image.resize(source, [48, 48], "bicubic").numpy() + detail + OFFSET
    fixed = color_fix(output, source, "wavelet").numpy()

    def finest_band(x):
        return x - wavelet_blur(x, 1).numpy()

    high = finest_band(output)
    assert np.abs(finest_band(fixed) - high).max() < 0.02 * np.abs(high).max()
    np.testing.assert_allclose(fixed.mean(axis=(1, 2)), source.mean(axis=(1, 2)), atol=2e-3)
    adain_fixed = color_fix(output, source, "adain").numpy()  # a per-channel gain: detail shrinks with it
    assert np.abs(finest_band(adain_fixed)).max() < np.abs(high).max()


def test_the_savedmodel_embeds_the_fix_and_gives_sr_tf_upscales_pixels(shifting_models, tmp_path):
    from sr_tf.export import ExportConfig, export_savedmodel

    _, shifted = shifting_models
    rgba = np.random.default_rng(3).integers(0, 256, (9, 11, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    path = export_savedmodel(shifted, tmp_path / "m" / "1", ExportConfig(tile_size=0, warmup=False, color_fix="adain"))
    loaded = tf.saved_model.load(str(path))
    served = loaded.signatures["serving_default"](images=tf.constant(rgba[None, ..., :3], tf.float32))["upscaled"]
    local = upscale_image(Upscaler(shifted, color_fix="adain"), rgba)
    np.testing.assert_allclose(served.numpy()[0], local[..., :3], atol=1)
    encoded = loaded.signatures["encoded_image"](image_bytes=tf.constant([tf.io.encode_png(rgba).numpy()]))
    np.testing.assert_array_equal(tf.io.decode_png(encoded["upscaled_bytes"][0]).numpy(), local)
    plain = upscale_image(Upscaler(shifted), rgba)
    assert np.abs(plain[..., :3].astype(int) - local[..., :3]).max() >= 10  # the fix changed the colours


def test_an_unknown_method_names_the_parameter():
    with pytest.raises(ValueError, match="color_fix="):
        color_fix(np.zeros((1, 4, 4, 3), np.float32), np.zeros((1, 2, 2, 3), np.float32), "gamma")
    from sr_tf.export import ExportConfig

    with pytest.raises(ValueError, match="color_fix="):
        ExportConfig(color_fix="gamma")
