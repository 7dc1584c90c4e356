import keras
import numpy as np
import pytest

from sr_tf.cli import main
from sr_tf.models import SRResNet, SRVGGNetCompact
from sr_tf.models.interpolate import interpolate_models


def built(model, seed):
    keras.utils.set_random_seed(seed)
    model(np.zeros((1, 8, 8, 3), np.float32))
    return model


def test_alpha_0_and_1_reproduce_the_inputs_via_cli(tmp_path):
    a = built(SRResNet(num_feat=8, num_block=1, scale=2), 1)
    b = built(SRResNet(num_feat=8, num_block=1, scale=2), 2)
    # make BN statistics differ too: they are interpolated like every other weight
    b.get_layer("bn_body").moving_mean.assign(np.full(8, 3.0, np.float32))
    a.save(tmp_path / "psnr.keras")
    b.save(tmp_path / "gan.keras")
    x = np.random.default_rng(0).random((1, 8, 8, 3)).astype(np.float32)
    for alpha, reference in ((0.0, a), (1.0, b)):
        out = tmp_path / f"out{alpha}.keras"
        argv = ["interpolate", "--psnr", str(tmp_path / "psnr.keras"), "--gan", str(tmp_path / "gan.keras"),
                "--alpha", str(alpha), "--out", str(out)]
        assert main(argv) == 0
        model = keras.saving.load_model(out)
        for w, ref in zip(model.get_weights(), reference.get_weights(), strict=True):
            np.testing.assert_array_equal(w, ref)
        np.testing.assert_array_equal(model(x).numpy(), reference(x).numpy())


def test_intermediate_alpha_is_the_weighted_mean():
    a = built(SRVGGNetCompact(num_feat=8, num_conv=1, upscale=2), 1)
    b = built(SRVGGNetCompact(num_feat=8, num_conv=1, upscale=2), 2)
    mixed = interpolate_models(a, b, 0.8)
    for w, wa, wb in zip(mixed.get_weights(), a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(w, 0.2 * wa + 0.8 * wb, rtol=1e-6, atol=1e-7)


def test_different_architectures_are_refused(tmp_path):
    a = built(SRVGGNetCompact(num_feat=8, num_conv=1, upscale=2), 1)
    b = built(SRVGGNetCompact(num_feat=16, num_conv=1, upscale=2), 2)
    with pytest.raises(ValueError, match="different architectures"):
        interpolate_models(a, b, 0.5)
    c = built(SRResNet(num_feat=8, num_block=1, scale=2), 3)
    a.save(tmp_path / "a.keras")
    c.save(tmp_path / "c.keras")
    with pytest.raises(SystemExit, match="different architectures"):
        main(["interpolate", "--psnr", str(tmp_path / "a.keras"), "--gan", str(tmp_path / "c.keras"),
              "--out", str(tmp_path / "o.keras")])
    with pytest.raises(ValueError, match="alpha"):
        interpolate_models(a, a, 1.5)
