"""`sr-tf make-tfrecords` and `sr-tf degrade`: thin shells, bad inputs reported, outputs as the library makes them."""

import json

import numpy as np
from data_helpers import decode, make_bad_inputs, matlab_imresize, random_image, write_folder

from sr_tf.cli import main


def test_make_tfrecords_cli_reports_bad_inputs_and_verifies(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = write_folder(tmp_path / "hr", {f"{i:04d}.png": random_image(rng, 24, 24) for i in range(3)})
    bad = make_bad_inputs(tmp_path / "hr", data["0000.png"])
    out = tmp_path / "records"
    rc = main(["make-tfrecords", str(tmp_path / "hr"), str(out), "--num-shards", "2", "--sub-image", "16", "--step", "8", "--no-progress"])
    captured = capsys.readouterr()
    assert rc == 0
    for name in bad:
        assert name in captured.err
    assert "12 records from 3 images in 2 shards" in captured.out and "4 input(s) skipped" in captured.out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["num_skipped"] == 4 and manifest["num_records"] == 12
    assert main(["make-tfrecords", "--verify", str(out)]) == 0
    shard = out / manifest["shards"][0]["file"]
    shard.write_bytes(shard.read_bytes()[:100])
    assert main(["make-tfrecords", "--verify", str(out)]) == 1
    assert shard.name in capsys.readouterr().err


def test_make_tfrecords_cli_usage_errors(tmp_path, capsys):
    assert main(["make-tfrecords", str(tmp_path)]) == 2
    assert main(["make-tfrecords", str(tmp_path / "missing"), str(tmp_path / "o")]) == 2
    assert "Not a folder" in capsys.readouterr().err


def test_degrade_cli_bicubic_matches_reference_and_skips_bad_files(tmp_path, capsys):
    rng = np.random.default_rng(1)
    images = {"a.png": random_image(rng, 12, 16), "b.jpg": random_image(rng, 12, 16)}
    data = write_folder(tmp_path / "hr", images)
    bad = make_bad_inputs(tmp_path / "hr", data["a.png"])
    rc = main(["degrade", str(tmp_path / "hr"), str(tmp_path / "lr"), "--scale", "4", "--suffix", "x4"])
    captured = capsys.readouterr()
    assert rc == 1  # some inputs failed; all others were written
    assert all(name in captured.err for name in bad)
    assert sorted(p.name for p in (tmp_path / "lr").iterdir()) == ["ax4.png", "bx4.png"]
    source = decode(data["a.png"]) / 255.0
    expected = np.clip(np.round(matlab_imresize(source, 4) * 255), 0, 255)
    got = decode((tmp_path / "lr" / "ax4.png").read_bytes()).astype(np.float64)
    assert got.shape == (3, 4, 3) and np.abs(got - expected).max() <= 1


def test_degrade_cli_realesrgan_is_seeded_per_file(tmp_path):
    image = random_image(np.random.default_rng(2), 32, 32)
    write_folder(tmp_path / "hr", {"x.png": image})
    outputs = []
    for seed, name in ((5, "one.png"), (5, "two.png"), (6, "three.png")):
        assert main(["degrade", str(tmp_path / "hr" / "x.png"), str(tmp_path / name), "--degradation", "realesrgan", "--seed", str(seed)]) == 0
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1] != outputs[2]
    assert decode(outputs[0]).shape == (8, 8, 3)


def test_degrade_cli_writes_the_format_of_the_output_extension(tmp_path, capsys):
    import io

    from PIL import Image

    write_folder(tmp_path / "hr", {"x.png": random_image(np.random.default_rng(3), 16, 16)})
    for name, fmt in (("lr.jpg", "JPEG"), ("lr.webp", "WEBP"), ("lr.png", "PNG")):
        assert main(["degrade", str(tmp_path / "hr" / "x.png"), str(tmp_path / name), "--no-progress"]) == 0
        with Image.open(io.BytesIO((tmp_path / name).read_bytes())) as image:
            assert (image.format, image.size) == (fmt, (4, 4))
    assert main(["degrade", str(tmp_path / "hr" / "x.png"), str(tmp_path / "lr.gif")]) == 2
    assert "OUT must end in one of" in capsys.readouterr().err and not (tmp_path / "lr.gif").exists()
