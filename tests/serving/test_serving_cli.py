"""`sr-tf predict` against the embedded server, and `sr-tf serve` as a real process."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import requests
from PIL import Image
from serving_helpers import assert_upscaled_equal, copy_version, image_bytes, reference_upscale

from sr_tf.cli import main


def test_predict_cli_over_rest_and_grpc(server, rest_url, grpc_target, tmp_path, tiny_model, capsys):
    rgb = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    (tmp_path / "in.png").write_bytes(image_bytes(rgb))
    want = reference_upscale(tiny_model, rgb[None].astype(np.float32))[0]
    for url, name in ((rest_url, "rest.png"), (f"grpc://{grpc_target}", "grpc.png")):
        assert main(["predict", "--server", url, "--model", "tiny", str(tmp_path / "in.png"), str(tmp_path / name)]) == 0
        assert_upscaled_equal(np.array(Image.open(tmp_path / name)), want)
    assert main(["predict", "--server", rest_url, "--model", "nope", str(tmp_path / "in.png"), str(tmp_path / "x.png")]) == 1
    assert "404" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.large
def test_serve_cli_process_answers_and_stops_on_sigterm(exported, tmp_path):
    copy_version(exported, tmp_path / "cli", 1)
    rest, grpc_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sr_tf", "serve", "--model-base-path", str(tmp_path / "cli"),
         "--rest-port", str(rest), "--grpc-port", str(grpc_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    try:
        url = f"http://127.0.0.1:{rest}/v1/models/cli"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stdout.read().decode()
                time.sleep(0.2)
        png = image_bytes(np.zeros((4, 4, 3), np.uint8))
        import base64

        r = requests.post(url + ":predict", json={"signature_name": "encoded_image",
                                                  "instances": [{"b64": base64.b64encode(png).decode()}]}, timeout=30)
        assert r.status_code == 200
        assert Image.open(io.BytesIO(base64.b64decode(r.json()["predictions"][0]["b64"]))).size == (8, 8)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
