"""Load: 32 concurrent clients (half REST, half gRPC) against a small model.

Runs SR_TF_LOAD_SECONDS seconds (default 10 for CI; the acceptance run uses 30):
  SR_TF_LOAD_SECONDS=30 python -m pytest -q tests/serving/test_load.py
Only explicit 429/503 (RESOURCE_EXHAUSTED/UNAVAILABLE) may fail; every response is checked
against the expected output of its own input; the queue and the process memory stay bounded.
"""

from __future__ import annotations

import json
import os
import threading

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from serving_helpers import assert_upscaled_equal, copy_version, random_pixels
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from sr_tf.serving.batching import BatchingConfig
from sr_tf.serving.models import ModelConfig
from sr_tf.serving.server import ModelServer, ServerConfig

CLIENTS = 32
SECONDS = float(os.environ.get("SR_TF_LOAD_SECONDS", "10"))
MAX_ENQUEUED = 24


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.large
def test_32_concurrent_clients(exported, tmp_path):
    copy_version(exported, tmp_path / "load", 1)
    config = ServerConfig(
        rest_port=0, grpc_port=0, poll_seconds=0, grace_seconds=10,
        batching=BatchingConfig(enabled=True, max_batch_size=8, batch_timeout_micros=2000,
                                num_batch_threads=2, max_enqueued=MAX_ENQUEUED),
    )
    srv = ModelServer([ModelConfig("load", str(tmp_path / "load"))], config).start()
    servable = srv.manager.resolve("load")
    signature = servable.signature("serving_default")
    # each client has its own inputs (distinct seeds) and their in-process outputs
    cases = {}
    for c in range(CLIENTS):
        for k in range(2):
            x = random_pixels(1000 * c + k, (1, 8, 8, 3))
            cases[(c, k)] = (x, servable.run(signature, {"images": x})["upscaled"])
    stats = {"ok": 0, "refused": 0}
    errors, lock, stop = [], threading.Lock(), threading.Event()
    max_pending = [0]

    def rest_client(c):
        session = requests.Session()
        url = f"http://127.0.0.1:{srv.rest_port}/v1/models/load:predict"
        k = 0
        while not stop.is_set():
            x, want = cases[(c, k % 2)]
            r = session.post(url, data=json.dumps({"instances": x.tolist()}), timeout=30)
            if r.status_code == 200:
                assert_upscaled_equal(np.array(r.json()["predictions"], np.float32), want)
                key = "ok"
            elif r.status_code in (429, 503):
                key = "refused"
            else:
                raise AssertionError(f"REST {r.status_code}: {r.text[:200]}")
            with lock:
                stats[key] += 1
            k += 1

    def grpc_client(c):
        channel = grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        k = 0
        while not stop.is_set():
            x, want = cases[(c, k % 2)]
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "load"
            request.inputs["images"].CopyFrom(tf.make_tensor_proto(x))
            try:
                out = tf.make_ndarray(stub.Predict(request, 30).outputs["upscaled"])
                assert_upscaled_equal(out, want)
                key = "ok"
            except grpc.RpcError as err:
                if err.code() not in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE):
                    raise AssertionError(f"gRPC {err.code()}: {err.details()}") from None
                key = "refused"
            with lock:
                stats[key] += 1
            k += 1
        channel.close()

    def guarded(fn, c):
        try:
            fn(c)
        except BaseException as err:  # collected and reported by the main thread
            errors.append(err)
            stop.set()

    def monitor():
        while not stop.wait(0.01):
            max_pending[0] = max(max_pending[0], srv.core.scheduler.pending)

    threads = [threading.Thread(target=guarded, args=(rest_client if c % 2 else grpc_client, c)) for c in range(CLIENTS)]
    watcher = threading.Thread(target=monitor)
    rss_start = _rss_mb()
    try:
        for t in threads + [watcher]:
            t.start()
        stop.wait(SECONDS)
        stop.set()
        for t in threads + [watcher]:
            t.join(60)
    finally:
        srv.stop()
    rss_growth = _rss_mb() - rss_start
    print(f"\nload: {SECONDS:.0f}s, {CLIENTS} clients: {stats['ok']} ok, {stats['refused']} refused (429/503), "
          f"max queue {max_pending[0]}, RSS growth {rss_growth:.0f} MiB")
    assert not errors, errors[0]
    assert stats["ok"] > CLIENTS
    assert max_pending[0] <= MAX_ENQUEUED
    assert rss_growth < 300, f"memory grew by {rss_growth:.0f} MiB"
