"""`sr-tf serve` as an operator runs it: TF Serving's flags, busy ports, SIGTERM mid-request."""

from __future__ import annotations

import base64
import json
import signal
import socket
import threading
import time

import grpc
import numpy as np
import pytest
import requests
from serving_helpers import ServeProcess, copy_version, export_slow_model, free_port, image_bytes

from sr_tf.serving.grpc_service import GRPC_OPTIONS

pytestmark = pytest.mark.large


def test_tf_serving_command_line_serves_and_exports_tf_serving_metrics(exported, tmp_path):
    copy_version(exported, tmp_path / "models" / "sr", 1)
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n')
    batching = tmp_path / "batching.config"
    batching.write_text("max_batch_size { value: 4 }\nbatch_timeout_micros { value: 1000 }\n"
                        "enable_large_batch_splitting { value: false }\nmax_execution_batch_size { value: 4 }\n")
    rest, port = free_port(), free_port()
    args = [f"--port={port}", f"--rest_api_port={rest}", "--model_name=sr",
            f"--model_base_path={tmp_path / 'models' / 'sr'}", f"--monitoring_config_file={monitoring}",
            "--enable_batching=true", f"--batching_parameters_file={batching}",
            "--file_system_poll_wait_seconds=0", "--rest_api_timeout_in_ms=20000"]
    url = f"http://127.0.0.1:{rest}"
    with ServeProcess(args, f"{url}/v1/models/sr") as proc:
        png = image_bytes(np.zeros((4, 4, 3), np.uint8))
        body = {"signature_name": "encoded_image", "instances": [{"b64": base64.b64encode(png).decode()}]}
        assert requests.post(f"{url}/v1/models/sr:predict", json=body, timeout=30).status_code == 200
        assert requests.post(f"{url}/v1/models/sr:predict", json={"x": 1}, timeout=30).status_code == 400
        text = requests.get(f"{url}/monitoring/prometheus/metrics", timeout=10).text
        assert '# TYPE :tensorflow:serving:request_count counter' in text
        assert ':tensorflow:serving:request_count{model_name="sr",status="OK"} 1\n' in text
        assert ':tensorflow:serving:request_count{model_name="sr",status="INVALID_ARGUMENT"} 1\n' in text
        assert ':tensorflow:serving:request_latency_bucket{model_name="sr",API="Predict",entrypoint="REST",le="+Inf"} 2' \
            in text
        assert ':tensorflow:serving:runtime_latency_count{model_name="sr",API="Predict",runtime="TF2"} 1' in text
        assert "sr_tf_serving_requests_total" in text  # ours stay
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=GRPC_OPTIONS) as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.proc.wait(30) == 0
        out = proc.output()
    assert f"REST http://127.0.0.1:{rest}/v1/models/sr:predict" in out and f"gRPC 127.0.0.1:{port}" in out


def _one_line_refusal(args: list[str], port: int) -> str:
    start = time.monotonic()
    proc = ServeProcess(args, None)
    try:
        rc = proc.proc.wait(60)
    finally:
        proc.close()
    out = proc.output()
    assert rc == 2, out
    lines = [line for line in out.splitlines() if line.strip() and "absl" not in line]
    assert len(lines) == 1, out
    assert f"port {port}" in lines[0] and "in use" in lines[0], lines[0]
    assert "Loading" not in out  # refused before any model loads
    assert time.monotonic() - start < 20
    return lines[0]


def test_busy_grpc_port_is_refused_not_shared(exported, tmp_path):
    copy_version(exported, tmp_path / "m", 1)
    # another gRPC server on the port, with grpcio's default SO_REUSEPORT (as a second server would have)
    other = grpc.server(__import__("concurrent.futures").futures.ThreadPoolExecutor(1))
    port = other.add_insecure_port("127.0.0.1:0")
    other.start()
    try:
        line = _one_line_refusal(["--model-base-path", str(tmp_path / "m"), "--grpc-port", str(port),
                                  "--rest-port", str(free_port())], port)
        assert "--port" in line
    finally:
        other.stop(0)


def test_busy_rest_port_is_refused_fast(exported, tmp_path):
    copy_version(exported, tmp_path / "m", 1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        line = _one_line_refusal(["--model-base-path", str(tmp_path / "m"), "--rest-port", str(port),
                                  "--grpc-port", str(free_port())], port)
    assert "--rest_api_port" in line


def test_sigterm_during_a_request_longer_than_the_grace_period_exits_0(tmp_path):
    export_slow_model(tmp_path / "slow" / "1")
    rest = free_port()
    url = f"http://127.0.0.1:{rest}"
    with ServeProcess(["--model-base-path", str(tmp_path / "slow"), "--rest-port", str(rest),
                       "--grpc-port", str(free_port()), "--grace-seconds", "1"], f"{url}/v1/models/slow") as proc:
        result = {}
        x = np.full((1, 2, 2, 3), 8.0, np.float32)  # the slow model runs for 8 s
        t = threading.Thread(target=lambda: result.update(r=requests.post(
            f"{url}/v1/models/slow:predict", data=json.dumps({"instances": x[0:1].tolist()}), timeout=60)))
        t.start()
        time.sleep(1.5)  # the request is now running
        start = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        rc = proc.proc.wait(30)
        stopped = time.monotonic() - start
        t.join(30)
    assert rc == 0, proc.output()  # not 139 (SIGSEGV)
    assert stopped < 6, f"took {stopped:.1f} s to stop"
    r = result["r"]
    assert r.status_code == 503 and r.headers["content-type"] == "application/json", (r.status_code, r.text)
    assert "grace period" in r.json()["error"]
