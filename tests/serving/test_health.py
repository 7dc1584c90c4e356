"""`grpc.health.v1` behind `--enable_grpc_healthcheck_service`, seen through grpcio-health-checking's
own client stub: NOT_SERVING while loading and after a failed load, SERVING once every model has an
AVAILABLE version, NOT_SERVING from SIGTERM through the grace period."""

from __future__ import annotations

import json
import signal
import threading
import time

import grpc
import numpy as np
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc
from serving_helpers import ServeProcess, copy_version, export_slow_model, free_port

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


def _check(stub, service: str = "") -> int:
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


class _Watcher:
    """Collects the statuses a `Watch` stream sends, on a thread."""

    def __init__(self, channel, service: str = ""):
        self.seen: list[int] = []
        self.call = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=service))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for response in self.call:
                self.seen.append(response.status)
        except grpc.RpcError:
            pass

    def wait_for(self, status: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while status not in self.seen and time.monotonic() < deadline:
            time.sleep(0.02)
        assert status in self.seen, self.seen


def test_not_serving_while_loading_and_after_a_failed_load_serving_once_available(exported, tmp_path):
    from sr_tf.serving.models import ModelConfig
    from sr_tf.serving.server import ModelServer, ServerConfig

    base = tmp_path / "m"
    (base / "1").mkdir(parents=True)
    (base / "1" / "saved_model.pb").write_bytes(b"not a SavedModel")
    config = ServerConfig(rest_port=None, grpc_port=0, poll_seconds=0.2, warmup=False, grpc_health=True,
                          load_retries=3, load_retry_interval=0.4, grace_seconds=2)
    srv = ModelServer([ModelConfig("tiny", str(base))], config)
    srv.bind()
    starting = threading.Thread(target=srv.start, daemon=True)
    starting.start()  # loads (and fails, retrying) version 1 for ~1.2 s
    channel = grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}")
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        grpc.channel_ready_future(channel).result(timeout=10)
        watcher = _Watcher(channel)
        watcher.wait_for(NOT_SERVING, 5)
        assert srv.manager.status("tiny")[0][1].state == "LOADING"
        assert _check(stub) == NOT_SERVING and _check(stub, "tiny") == NOT_SERVING
        starting.join(20)
        assert srv.manager.status("tiny")[0][1].state == "END"  # the load failed for good
        assert _check(stub) == NOT_SERVING
        copy_version(exported, base, 2)  # a good version appears
        watcher.wait_for(SERVING)
        assert _check(stub) == SERVING and _check(stub, "tiny") == SERVING
        with pytest.raises(grpc.RpcError) as err:
            _check(stub, "no-such-model")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        srv.stop()
        watcher.thread.join(10)
        assert watcher.seen == [NOT_SERVING, SERVING, NOT_SERVING], watcher.seen
    finally:
        channel.close()
        if srv._grpc is not None:
            srv.stop()


def test_health_service_is_off_without_the_flag(server, grpc_target):
    with grpc.insecure_channel(grpc_target) as channel:
        with pytest.raises(grpc.RpcError) as err:
            _check(health_pb2_grpc.HealthStub(channel))
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.large
def test_not_serving_after_sigterm_until_the_grace_period_ends(tmp_path):
    export_slow_model(tmp_path / "slow" / "1")
    rest, port = free_port(), free_port()
    url = f"http://127.0.0.1:{rest}"
    with ServeProcess(["--model_base_path", str(tmp_path / "slow"), f"--rest_api_port={rest}", f"--port={port}",
                       "--enable_grpc_healthcheck_service", "--grace-seconds=6"], f"{url}/v1/models/slow") as proc:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            assert _check(stub) == SERVING and _check(stub, "slow") == SERVING
            watcher = _Watcher(channel)
            watcher.wait_for(SERVING)
            result = {}
            x = np.full((1, 2, 2, 3), 3.0, np.float32)  # runs for 3 s
            t = threading.Thread(target=lambda: result.update(r=requests.post(
                f"{url}/v1/models/slow:predict", data=json.dumps({"instances": x.tolist()}), timeout=30)))
            t.start()
            time.sleep(1.0)
            proc.proc.send_signal(signal.SIGTERM)
            watcher.wait_for(NOT_SERVING, 2)
            assert _check(stub) == NOT_SERVING  # still answering during the grace period
            t.join(30)
            assert proc.proc.wait(30) == 0, proc.output()
    assert result["r"].status_code == 200  # the request in flight finished
    assert watcher.seen[:2] == [SERVING, NOT_SERVING], watcher.seen
