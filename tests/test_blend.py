"""The denoise/blend knob: weight sets blended per request in the graph (Real-ESRGAN's `-dn`).

Oracles: each endpoint model on its own (`sr-tf export --model`), and `sr-tf interpolate` for the
blend in between; `w = s * A + (1 - s) * B` for `--blend A B` equals `interpolate --psnr B --gan A
--alpha s`.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from sr_tf.cli import main
from sr_tf.models import SRVGGNetCompact
from sr_tf.models.interpolate import WeightBlend, blend_coefficients, interpolate_models

X = np.round(np.random.default_rng(0).uniform(0, 255, (1, 7, 6, 3))).astype(np.float32)


def _model(seed):
    keras.utils.set_random_seed(seed)
    model = SRVGGNetCompact(num_feat=8, num_conv=1, upscale=2)
    model(np.zeros((1, 4, 4, 3), np.float32))
    rng = np.random.default_rng(seed)  # weights large enough that the two models differ in 8-bit output
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """`sr-tf export --blend A B` (loaded back), and the serving graphs of A, B and `sr-tf interpolate`'s
    0.5 blend as plain exports build them (the same module, not saved: saving adds nothing to compare)."""
    from sr_tf.export import ExportConfig, SRServingModule

    d = tmp_path_factory.mktemp("blend")
    a, b = _model(1), _model(2)
    a.save(d / "a.keras")
    b.save(d / "b.keras")
    assert main(["export", "--blend", str(d / "a.keras"), str(d / "b.keras"), "--out", str(d / "ab" / "1"),
                 "--tile", "0", "--no-warmup"]) == 0
    assert main(["interpolate", "--psnr", str(d / "b.keras"), "--gan", str(d / "a.keras"), "--alpha", "0.5",
                 "--out", str(d / "mid.keras")]) == 0
    loaded = tf.saved_model.load(str(d / "ab" / "1"))
    out = {"ab": loaded.signatures}
    for name, model in (("a", a), ("b", b), ("mid", keras.saving.load_model(d / "mid.keras"))):
        out[name] = SRServingModule(model, 2, ExportConfig(tile_size=0)).signatures()
    out["_loaded"] = loaded  # keeps the signatures' variables alive
    return out


def _pixels(signatures, signature="serving_default", **extra):
    return signatures[signature](images=tf.constant(X), **extra)["upscaled"].numpy()


def test_strength_at_the_ends_is_each_model_and_half_is_interpolate(exports):
    blended = lambda s: _pixels(exports["ab"], "blended", strength=tf.constant(s))  # noqa: E731
    np.testing.assert_array_equal(blended(1.0), _pixels(exports["a"]))
    np.testing.assert_array_equal(blended(0.0), _pixels(exports["b"]))
    np.testing.assert_array_equal(blended(0.5), _pixels(exports["mid"]))
    assert not np.array_equal(_pixels(exports["a"]), _pixels(exports["b"]))  # the test can tell them apart
    # serving_default keeps its one-input contract and runs at the default strength (0.5)
    np.testing.assert_array_equal(_pixels(exports["ab"]), _pixels(exports["mid"]))
    signature = exports["ab"]["blended"]
    assert set(signature.structured_input_signature[1]) == {"images", "strength"}
    assert set(exports["ab"]["serving_default"].structured_input_signature[1]) == {"images"}
    png = tf.io.encode_png(tf.cast(X[0], tf.uint8))
    out = exports["ab"]["encoded_image_blended"](image_bytes=tf.stack([png]), strength=tf.constant(1.0))
    np.testing.assert_array_equal(tf.io.decode_png(out["upscaled_bytes"][0]).numpy(), _pixels(exports["a"])[0])


def test_blend_direction_levels_and_exact_endpoints_in_the_library():
    a, b, c = _model(1), _model(2), _model(3)
    x = X / 255.0
    two = WeightBlend([b, a])
    np.testing.assert_array_equal(two(x, 1.0).numpy(), a(x).numpy())
    np.testing.assert_array_equal(two(x, 0.0).numpy(), b(x).numpy())
    for s in (0.25, 0.5):  # the direction: strength s is interpolate's alpha s with A as the "gan" model
        for w, ref in zip(two.at(s).get_weights(), interpolate_models(b, a, s).get_weights(), strict=True):
            np.testing.assert_allclose(w, ref, rtol=1e-6, atol=1e-7)
    # a family on its own levels: piecewise linear between neighbours, each level exactly its model
    family = WeightBlend([b, a, c], levels=[-1.0, 0.0, 3.0], default=0.0)
    np.testing.assert_array_equal(family(x).numpy(), a(x).numpy())
    np.testing.assert_array_equal(family(x, 3.0).numpy(), c(x).numpy())
    np.testing.assert_array_equal(family(x, 9.0).numpy(), c(x).numpy())  # clipped to the range
    assert [float(v) for v in blend_coefficients([-1.0, 0.0, 3.0], 1.5)] == [0.0, 0.5, 0.5]
    with pytest.raises(ValueError, match="different architectures"):
        WeightBlend([a, SRVGGNetCompact(num_feat=4, num_conv=1, upscale=2)])
    with pytest.raises(ValueError, match=r"`strength` must be in \[-1, 3\]"):
        family.at(4.0)


def test_denoise_families_and_flag_errors(tmp_path, capsys):
    from sr_tf.pretrained.entries import denoise_family

    assert denoise_family("realcugan-x3-denoise3x") == [
        (-1.0, "realcugan-x3-conservative"), (0.0, "realcugan-x3-no-denoise"), (3.0, "realcugan-x3-denoise3x")]
    assert [n for _, n in denoise_family("waifu2x-cunet-x2-noise1")] == [
        "waifu2x-cunet-x2", *(f"waifu2x-cunet-x2-noise{i}" for i in range(4))]
    assert denoise_family("realesrgan-x4plus") is None and denoise_family("realcugan-nose-x2-no-denoise") is None
    _model(1).save(tmp_path / "a.keras")
    with pytest.raises(SystemExit, match="no denoise family"):
        main(["upscale", str(tmp_path / "a.keras"), "-o", str(tmp_path), "-m", str(tmp_path / "a.keras"),
              "--denoise", "1"])
    code = main(["export", "--blend", str(tmp_path / "a.keras"), str(tmp_path / "a.keras"), "--denoise", "2",
                 "--out", str(tmp_path / "m" / "1"), "--no-warmup"])
    assert code == 2 and "--denoise must be in [0, 1]" in capsys.readouterr().err


def test_upscale_denoise_runs_the_family_blend(tmp_path, monkeypatch):
    """`sr-tf upscale --denoise X` on a (stand-in) family at levels -1 and 3: X = 1 is halfway, the image
    `sr-tf interpolate --alpha 0.5` gives."""
    from PIL import Image

    import sr_tf.runtime.blends as blends

    a, b = _model(1), _model(2)
    asked = []

    def family(spec, default=None):
        asked.append((spec, default))
        return WeightBlend([b, a], levels=[-1.0, 3.0], default=default)

    monkeypatch.setattr(blends, "load_denoise_family", family)
    Image.fromarray(X[0].astype(np.uint8)).save(tmp_path / "in.png")
    assert main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path), "-m", "stand-in-family",
                 "--denoise", "1", "--tile", "0", "--no-progress"]) == 0
    assert asked == [("stand-in-family", 1.0)]
    from sr_tf.imageio import read_image
    from sr_tf.inference import Upscaler, upscale_image

    mid = upscale_image(Upscaler(interpolate_models(b, a, 0.5)), read_image(tmp_path / "in.png"), tile=0)
    np.testing.assert_array_equal(read_image(tmp_path / "in_out.png"), mid)
