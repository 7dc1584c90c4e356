"""`sr-tf predict` against the embedded server, and `sr-tf serve` as a real process."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import requests
from PIL import Image
from serving_helpers import assert_upscaled_equal, copy_version, image_bytes, reference_upscale

from sr_tf.cli import main
from tests.net_helpers import free_port


def test_predict_cli_over_rest_and_grpc(server, rest_url, grpc_target, tmp_path, tiny_model, capsys):
    rgb = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    (tmp_path / "in.png").write_bytes(image_bytes(rgb))
    want = reference_upscale(tiny_model, rgb[None].astype(np.float32))[0]
    for url, name in ((rest_url, "rest.png"), (f"grpc://{grpc_target}", "grpc.png")):
        assert main(["predict", "--server", url, "--model", "tiny", str(tmp_path / "in.png"), str(tmp_path / name)]) == 0
        assert_upscaled_equal(np.array(Image.open(tmp_path / name)), want)
    assert main(["predict", "--server", rest_url, "--model", "nope", str(tmp_path / "in.png"), str(tmp_path / "x.png")]) == 1
    assert "404" in capsys.readouterr().err




@pytest.mark.large
def test_serve_cli_process_answers_and_stops_on_sigterm(exported, tmp_path):
    copy_version(exported, tmp_path / "cli", 1)
    rest, grpc_port = free_port(), free_port()
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
            except requests.RequestException:  # not listening yet, or still loading (a read timeout)
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


def _serve_args(argv):
    from sr_tf.cli import build_parser

    return build_parser(["serve", *argv]).parse_args(["serve", *argv])


def test_every_tensorflow_model_server_flag_is_accepted():
    from sr_tf.cli.serve import NO_EFFECT, REFUSED, TF_SERVING_FLAGS

    values = {"port": "1", "rest_api_port": "2", "version": "true"}
    for name in TF_SERVING_FLAGS:
        args = _serve_args([f"--{name}={values.get(name, '1')}"])
        assert getattr(args, name) is not None, name
    assert set(NO_EFFECT) | set(REFUSED) <= set(TF_SERVING_FLAGS)
    # the earlier spellings are aliases of the same settings
    old = _serve_args(["--rest-port", "7", "--grpc-port", "8", "--model-base-path", "m", "--enable-batching"])
    new = _serve_args(["--rest_api_port=7", "--port=8", "--model_base_path=m", "--enable_batching=true"])
    for name in ("rest_api_port", "port", "model_base_path", "enable_batching"):
        assert getattr(old, name) == getattr(new, name), name
    assert _serve_args(["--enable_batching=false"]).enable_batching is False


def test_server_config_from_tf_serving_flags_and_vertex_environment(monkeypatch):
    from sr_tf.cli.serve import _server_config, _vertex_mode
    from sr_tf.serving.server import vertex_from_env

    for var in ("AIP_HTTP_PORT", "AIP_STORAGE_URI", "AIP_PREDICT_ROUTE", "AIP_HEALTH_ROUTE"):
        monkeypatch.delenv(var, raising=False)
    args = _serve_args(["--port=0", "--rest_api_port=9001", "--rest_api_timeout_in_ms=1500", "--max_num_load_retries=2",
                        "--load_retry_interval_micros=250000", "--grpc_channel_arguments=grpc.max_connection_age_ms=2000"])
    assert not _vertex_mode(args)
    config = _server_config(args, None)
    assert (config.host, config.rest_port, config.grpc_port, config.ui) == ("127.0.0.1", 9001, None, True)
    assert (config.limits.timeout_seconds, config.load_retries, config.load_retry_interval) == (1.5, 2, 0.25)
    assert config.grpc_options == (("grpc.max_connection_age_ms", 2000),)
    assert _server_config(_serve_args(["--no-ui"]), None).ui is False
    # Vertex AI: AIP_* alone switches the mode on; all interfaces, AIP_HTTP_PORT, no gRPC, no page
    monkeypatch.setenv("AIP_HTTP_PORT", "8123")
    monkeypatch.setenv("AIP_STORAGE_URI", "/models/x")
    args = _serve_args([])
    assert _vertex_mode(args)
    config = _server_config(args, vertex_from_env())
    assert (config.host, config.rest_port, config.grpc_port, config.ui) == ("0.0.0.0", 8123, None, False)
    assert config.vertex.predict_route == "/predict"


def test_refused_and_missing_flags_exit_2_with_one_line(capsys, monkeypatch):
    for var in ("AIP_HTTP_PORT", "AIP_STORAGE_URI", "AIP_PREDICT_ROUTE", "AIP_HEALTH_ROUTE"):
        monkeypatch.delenv(var, raising=False)
    assert main(["serve", "--use_alts_credentials=true", "--model_base_path=m"]) == 2
    assert "--use_alts_credentials" in capsys.readouterr().err
    assert main(["serve", "--ssl_config_file=x.config", "--model_base_path=m"]) == 2
    assert "--ssl_config_file: cannot read x.config" in capsys.readouterr().err
    assert main(["serve", "--rest_api_port=0", "--port=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--model" in err and len(err.splitlines()) == 1
    assert main(["serve", "--vertex", "--port=0"]) == 2
    assert "AIP_STORAGE_URI" in capsys.readouterr().err


def test_model_flag_exports_a_keras_file_once_into_the_cache(tiny_model, tmp_path, monkeypatch):
    from sr_tf.runtime.savedmodels import list_versions
    from sr_tf.serving.models import resolve_model

    monkeypatch.setenv("SR_TF_CACHE_DIR", str(tmp_path / "cache"))
    tiny_model.save(tmp_path / "mine.keras")
    config = resolve_model(str(tmp_path / "mine.keras"))
    assert config.name == "mine" and list_versions(config.base_path) == [1]
    saved = os.path.join(config.base_path, "1", "saved_model.pb")
    stamp = os.stat(saved).st_mtime_ns
    assert resolve_model(str(tmp_path / "mine.keras")) == config and os.stat(saved).st_mtime_ns == stamp  # reused
    # a SavedModel directory is served as it is; a version folder's parent too
    assert resolve_model(os.path.join(config.base_path, "1"), name="x").base_path == os.path.join(config.base_path, "1")
    with pytest.raises(ValueError, match="neither a catalogue model"):
        resolve_model(str(tmp_path / "nope"))
