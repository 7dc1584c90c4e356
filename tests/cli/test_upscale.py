import numpy as np
import pytest

from sr_tf.cli import main
from sr_tf.imageio import read_image, write_image
from sr_tf.models import SRVGGNetCompact


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny x2 model that is exactly nearest-neighbour upsampling (zero weights)."""
    model = SRVGGNetCompact(num_feat=4, num_conv=1, upscale=2)
    model(np.zeros((1, 4, 4, 3), np.float32))
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    path = tmp_path_factory.mktemp("model") / "nearest_x2.keras"
    model.save(path)
    return str(path)


def nearest(x):
    return x.repeat(2, axis=0).repeat(2, axis=1)


@pytest.fixture
def inputs(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "in"
    images = {
        "rgb.png": rng.integers(0, 256, (6, 5, 3), dtype=np.uint8),
        "rgba.png": rng.integers(0, 256, (4, 7, 4), dtype=np.uint8),
        "gray.png": rng.integers(0, 256, (5, 5, 1), dtype=np.uint8),
        "deep.png": rng.integers(0, 65536, (3, 4, 3), dtype=np.uint16),
        "photo.jpg": rng.integers(0, 256, (8, 8, 3), dtype=np.uint8),
    }
    for name, array in images.items():
        write_image(d / name, array)
    return d, images


def test_folder_in_all_kinds_out(model_file, inputs, tmp_path, capsys):
    d, images = inputs
    out = tmp_path / "out"
    assert main(["upscale", str(d), "-o", str(out), "--model", model_file, "--no-progress"]) == 0
    for name in ("rgb.png", "rgba.png", "gray.png", "deep.png"):
        stem = name.rsplit(".", 1)[0]
        result = read_image(out / f"{stem}_out.png")
        np.testing.assert_array_equal(result, nearest(images[name]))
    assert read_image(out / "photo_out.jpg").shape == (16, 16, 3)
    assert "upscaled 5 of 5" in capsys.readouterr().out


def test_bad_files_are_reported_and_the_rest_still_processed(model_file, inputs, tmp_path, capsys):
    d, _ = inputs
    (d / "empty.png").write_bytes(b"")
    (d / "notes.png").write_bytes(b"not an image at all")
    out = tmp_path / "out"
    code = main(["upscale", str(d), str(tmp_path / "missing.png"), "-o", str(out), "--model", model_file, "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert "empty.png" in err and "notes.png" in err and "missing.png" in err
    assert len(list(out.iterdir())) == 5


def test_never_overwrites_an_input(model_file, inputs, capsys):
    d, images = inputs
    before = (d / "rgb.png").read_bytes()
    code = main(["upscale", str(d / "rgb.png"), "-o", str(d), "--suffix", "", "--model", model_file, "--no-progress"])
    assert code == 1
    assert "would overwrite an input" in capsys.readouterr().err
    assert (d / "rgb.png").read_bytes() == before


def test_glob_format_and_scale(model_file, inputs, tmp_path):
    d, images = inputs
    out = tmp_path / "out"
    code = main(["upscale", str(d / "r*.png"), "-o", str(out), "--model", model_file, "--format", "webp",
                 "--scale", "3", "--no-progress"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["rgb_out.webp", "rgba_out.webp"]
    assert read_image(out / "rgb_out.webp").shape == (18, 15, 3)
    assert read_image(out / "rgba_out.webp").shape == (12, 21, 4)


def test_jpeg_output_of_rgba_is_an_error_not_a_silent_drop(model_file, inputs, tmp_path, capsys):
    d, _ = inputs
    code = main(["upscale", str(d / "rgba.png"), "-o", str(tmp_path / "o"), "--model", model_file,
                 "--format", "jpg", "--no-progress"])
    assert code == 1 and "alpha" in capsys.readouterr().err


def test_tiles_give_the_same_result(model_file, inputs, tmp_path):
    d, images = inputs
    out = tmp_path / "out"
    assert main(["upscale", str(d / "rgb.png"), "-o", str(out), "--model", model_file, "--tile", "2",
                 "--tile-pad", "2", "--no-progress"]) == 0
    np.testing.assert_array_equal(read_image(out / "rgb_out.png"), nearest(images["rgb.png"]))


def test_unknown_model_is_a_clear_error(inputs, tmp_path):
    d, _ = inputs
    with pytest.raises(SystemExit, match="neither a catalogue model"):
        main(["upscale", str(d), "-o", str(tmp_path / "o"), "--model", "nope"])


def test_precision_and_backend_flags(model_file, inputs, tmp_path, capsys, monkeypatch):
    import sys

    d, images = inputs
    out = tmp_path / "bf16"
    assert main(["upscale", str(d / "rgb.png"), "-o", str(out), "--model", model_file, "--no-progress",
                 "--precision", "bfloat16"]) == 0
    # the zero-weight model is nearest upsampling; bfloat16 keeps 8 bits, so 8-bit pixels move by <= 1
    diff = np.abs(read_image(out / "rgb_out.png").astype(int) - nearest(images["rgb.png"]))
    assert diff.max() <= 1
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if OpenVINO were not installed
    assert main(["upscale", str(d / "rgb.png"), "-o", str(tmp_path / "ov"), "--model", model_file,
                 "--backend", "openvino"]) == 2
    assert "pip install 'sr-tf[openvino]'" in capsys.readouterr().err


def test_noise_level_flag_for_srmd_and_its_error_for_other_models(model_file, tmp_path, capsys):
    from sr_tf.models import SRMD

    model = SRMD(scale=2, num_feat=6, num_conv=2)
    model(np.zeros((1, 4, 4, 3), np.float32))
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    model.save(tmp_path / "srmd.keras")
    image = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    write_image(tmp_path / "in.png", image)
    outputs = {}
    for level in ("0", "30"):
        argv = ["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / level), "-m", str(tmp_path / "srmd.keras"),
                "--noise-level", level, "--no-progress"]
        assert main(argv) == 0
        outputs[level] = read_image(tmp_path / level / "in_out.png").astype(np.float32)
    expected = np.clip(np.round(model(image[None] / np.float32(255), noise_level=30.0).numpy()[0] * 255), 0, 255)
    np.testing.assert_allclose(outputs["30"], expected, atol=1)
    assert np.abs(outputs["0"] - outputs["30"]).max() > 2
    capsys.readouterr()
    argv = ["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "x"), "-m", model_file, "--noise-level", "5"]
    assert main(argv) == 2
    assert "--noise-level: model" in capsys.readouterr().err


def test_outputs_keep_the_inputs_metadata_unless_stripped(model_file, tmp_path):
    import io
    import sys
    from pathlib import Path

    from PIL import Image

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from metadata_helpers import assert_metadata_kept, tagged_photo

    d = tmp_path / "in"
    d.mkdir()
    stored = np.random.default_rng(2).integers(0, 256, (6, 4, 3), dtype=np.uint8)
    (d / "p3.jpg").write_bytes(tagged_photo("JPEG", stored, orientation=6))  # displayed 6 wide, 4 high
    (d / "p3.png").write_bytes(tagged_photo("PNG", stored, orientation=1, dpi=300))
    assert main(["upscale", str(d), "-o", str(tmp_path / "out"), "--model", model_file, "--no-progress"]) == 0
    assert_metadata_kept((tmp_path / "out" / "p3_out.jpg").read_bytes(), "JPEG", (12, 8), scale=2)
    assert_metadata_kept((tmp_path / "out" / "p3_out.png").read_bytes(), "PNG", (8, 12), scale=2, dpi=300)
    assert main(["upscale", str(d / "p3.png"), "-o", str(tmp_path / "bare"), "--model", model_file, "--no-progress",
                 "--strip-metadata", "--scale", "3"]) == 0
    with Image.open(io.BytesIO((tmp_path / "bare" / "p3_out.png").read_bytes())) as bare:
        assert bare.size == (12, 18) and bare.info == {} and not bare.getexif()


def test_color_fix_takes_the_colours_of_the_input(tmp_path):
    offset = np.array([0.1, -0.08, 0.05], np.float32)  # a model that shifts colours
    model = SRVGGNetCompact(num_feat=4, num_conv=1, upscale=2)
    model(np.zeros((1, 4, 4, 3), np.float32))
    model.set_weights([np.zeros_like(w) for w in model.get_weights()][:-1] + [np.tile(offset, 4)])
    model.save(tmp_path / "shift.keras")
    image = np.random.default_rng(5).integers(60, 200, (6, 5, 3), dtype=np.uint8)
    write_image(tmp_path / "in.png", image)
    means = {}
    for fix in ("none", "adain", "wavelet"):
        assert main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / fix), "-m", str(tmp_path / "shift.keras"),
                     "--color-fix", fix, "--no-progress"]) == 0
        means[fix] = read_image(tmp_path / fix / "in_out.png").mean(axis=(0, 1)) - image.mean(axis=(0, 1))
    np.testing.assert_allclose(means["none"], offset * 255, atol=0.6)
    for fix in ("adain", "wavelet"):  # the shift (13-26 levels) is gone; bicubic's own mean is within a level
        np.testing.assert_allclose(means[fix], 0, atol=1.5, err_msg=fix)
