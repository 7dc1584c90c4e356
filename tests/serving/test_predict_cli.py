"""`sr-tf predict` is a light client: REST without TensorFlow, output format from the extension."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from serving_helpers import image_bytes

from sr_tf.serving.models import ModelConfig, ModelManager, no_versions_message

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from cli_helpers import run_cli  # noqa: E402


def test_predict_over_rest_imports_no_tensorflow(rest_url, tmp_path):
    rgb = np.random.default_rng(3).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    (tmp_path / "in.png").write_bytes(image_bytes(rgb))
    status, heavy, out, err = run_cli(["predict", "--server", rest_url, "--model", "tiny",
                                       str(tmp_path / "in.png"), str(tmp_path / "out.png")])
    assert status == 0, err
    assert heavy == [], f"sr-tf predict over REST imported {heavy}"
    assert Image.open(tmp_path / "out.png").size == (10, 12)
    assert err == ""


def test_predict_writes_the_format_its_output_extension_names(rest_url, tmp_path):
    from sr_tf.cli import main

    (tmp_path / "in.png").write_bytes(image_bytes(np.full((6, 5, 3), 90, np.uint8)))
    for name, fmt in (("out.jpg", "JPEG"), ("out.jpeg", "JPEG"), ("out.webp", "WEBP"), ("out.png", "PNG")):
        assert main(["predict", "--server", rest_url, "--model", "tiny", str(tmp_path / "in.png"),
                     str(tmp_path / name)]) == 0
        with Image.open(io.BytesIO((tmp_path / name).read_bytes())) as image:
            assert (image.format, image.size) == (fmt, (10, 12)), name


def test_predict_says_plainly_when_no_server_answers(tmp_path, capsys):
    from sr_tf.cli import main

    (tmp_path / "in.png").write_bytes(image_bytes(np.zeros((4, 4, 3), np.uint8)))
    assert main(["predict", "--server", "http://127.0.0.1:9", "--model", "m", str(tmp_path / "in.png"),
                 str(tmp_path / "out.png")]) == 1
    assert capsys.readouterr().err.strip() == "sr-tf predict: cannot connect to http://127.0.0.1:9: is the server running?"


def test_a_model_config_that_serves_nothing_is_warned_about(exported, tmp_path, caplog):
    (tmp_path / "empty").mkdir()
    configs = [ModelConfig("gone", str(tmp_path / "nowhere")), ModelConfig("empty", str(tmp_path / "empty")),
               ModelConfig("tiny", str(exported.parent))]
    assert "does not exist" in no_versions_message(configs[0])
    assert "no versions found" in no_versions_message(configs[1])
    assert no_versions_message(configs[2]) is None
    manager = ModelManager(configs, poll_seconds=0, warmup=False)
    with caplog.at_level(logging.WARNING, logger="sr_tf.serving"):
        manager.start()
    manager.stop()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2 and "'gone'" in warned[0] and "'empty'" in warned[1]


def test_predict_puts_the_inputs_metadata_back_and_sends_the_pixels_upright(rest_url, tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from metadata_helpers import assert_metadata_kept, tagged_photo

    from sr_tf.cli import main

    stored = np.random.default_rng(4).integers(0, 256, (6, 4, 3), dtype=np.uint8)
    (tmp_path / "in.jpg").write_bytes(tagged_photo("JPEG", stored, orientation=6))  # displayed 6 wide, 4 high
    for name in ("out.png", "out.jpg", "out.webp"):
        assert main(["predict", "--server", rest_url, "--model", "tiny", str(tmp_path / "in.jpg"),
                     str(tmp_path / name)]) == 0
        assert_metadata_kept((tmp_path / name).read_bytes(), "JPEG", (12, 8), scale=2)
    assert main(["predict", "--server", rest_url, "--model", "tiny", str(tmp_path / "in.jpg"),
                 str(tmp_path / "bare.png"), "--strip-metadata"]) == 0
    with Image.open(tmp_path / "bare.png") as bare:
        assert bare.size == (12, 8) and bare.info == {} and not bare.getexif()
