"""Version hot-swap, broken versions, model config files with labels, Vertex AI mode, shutdown."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
import requests
from serving_helpers import assert_upscaled_equal, copy_version, random_pixels, reference_upscale

from sr_tf.serving.models import ModelConfig, parse_model_config_text
from sr_tf.serving.rest import VertexConfig
from sr_tf.serving.server import ModelServer, ServerConfig, vertex_from_env


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _versions(url, model):
    r = requests.get(f"{url}/v1/models/{model}", timeout=10).json()
    return {int(v["version"]): v for v in r["model_version_status"]}


@pytest.mark.large
def test_hot_swap_without_failed_requests_and_broken_version_keeps_serving(exported, tmp_path, tiny_model):
    base = tmp_path / "swap"
    copy_version(exported, base, 1)
    srv = ModelServer([ModelConfig("swap", str(base))], ServerConfig(rest_port=0, grpc_port=None, poll_seconds=0.1,
                                                                 load_retries=1, load_retry_interval=0.2))
    srv.start()
    url = f"http://127.0.0.1:{srv.rest_port}"
    x = random_pixels(7)
    want = reference_upscale(tiny_model, x)
    results, stop = [], threading.Event()

    def hammer():
        session = requests.Session()
        while not stop.is_set():
            r = session.post(f"{url}/v1/models/swap:predict", data=json.dumps({"instances": x.tolist()}), timeout=30)
            results.append((r.status_code, r.json()))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        copy_version(exported, base, 2)
        assert _wait_for(lambda: _versions(url, "swap").get(2, {}).get("state") == "AVAILABLE")
        assert _wait_for(lambda: _versions(url, "swap")[1]["state"] == "END")
        # a broken version 3: reported, and version 2 keeps serving
        (base / ".tmp-3").mkdir()
        (base / ".tmp-3" / "saved_model.pb").write_bytes(b"not a saved model")
        (base / ".tmp-3").rename(base / "3")
        assert _wait_for(lambda: _versions(url, "swap").get(3, {}).get("state") == "END")
        status3 = _versions(url, "swap")[3]["status"]
        assert status3["error_code"] != "OK" and "version 3" in status3["error_message"]
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
        srv.stop()
    assert len(results) > 5
    assert all(code == 200 for code, _ in results), [r for r in results if r[0] != 200][:3]
    for _, body in results:
        assert_upscaled_equal(np.array(body["predictions"]), want)


def test_model_config_file_with_two_models_and_labels(exported, tmp_path, tiny_model):
    copy_version(exported, tmp_path / "a", 1)
    copy_version(exported, tmp_path / "a", 2)
    copy_version(exported, tmp_path / "b", 5)
    text = f"""
    model_config_list {{
      config {{
        name: "a" base_path: "{tmp_path / 'a'}" model_platform: "tensorflow"
        model_version_policy {{ specific {{ versions: 1 versions: 2 }} }}
        version_labels {{ key: "stable" value: 1 }}
        version_labels {{ key: "canary" value: 2 }}
      }}
      config {{ name: "b" base_path: "b" }}
    }}"""
    configs = parse_model_config_text(text, base_dir=tmp_path)
    assert [c.name for c in configs] == ["a", "b"] and configs[1].base_path == str(tmp_path / "b")
    with ModelServer(configs, ServerConfig(rest_port=0, grpc_port=None, poll_seconds=0)) as srv:
        url = f"http://127.0.0.1:{srv.rest_port}"
        assert set(_versions(url, "a")) == {1, 2}
        assert list(_versions(url, "b")) == [5]
        # TF Serving's GetModelStatus (get_model_status_impl.cc) does not look at a label: all versions
        stable = requests.get(f"{url}/v1/models/a/labels/stable", timeout=10).json()
        assert [v["version"] for v in stable["model_version_status"]] == ["2", "1"]
        x = random_pixels(8)
        r = requests.post(f"{url}/v1/models/a/labels/canary:predict", data=json.dumps({"inputs": x.tolist()}), timeout=30)
        assert r.status_code == 200
        assert_upscaled_equal(np.array(r.json()["outputs"]), reference_upscale(tiny_model, x))
        bad = requests.post(f"{url}/v1/models/a/labels/nope:predict", data=json.dumps({"inputs": x.tolist()}), timeout=30)
        # server_core.cc GetModelVersionForLabel: INVALID_ARGUMENT (400)
        assert bad.status_code == 400 and bad.json()["error"] == "Unrecognized servable version label: nope"


def test_vertex_mode_routes(exported, tmp_path, tiny_model):
    settings = vertex_from_env({
        "AIP_STORAGE_URI": str(exported),  # a bare SavedModel folder, as Vertex hands it over
        "AIP_HTTP_PORT": "0", "AIP_HEALTH_ROUTE": "/v1/endpoints/e/deployedModels/d",
        "AIP_PREDICT_ROUTE": "/v1/endpoints/e/deployedModels/d:predict", "AIP_DEPLOYED_MODEL_ID": "d",
    })
    vertex = settings.routes
    assert isinstance(vertex, VertexConfig) and settings.port == 0
    config = ServerConfig(rest_port=settings.port, grpc_port=None, poll_seconds=0, vertex=vertex)
    with ModelServer([ModelConfig(vertex.model_name, settings.storage_uri)], config) as srv:
        url = f"http://127.0.0.1:{srv.rest_port}"
        assert requests.get(url + vertex.health_route, timeout=10).status_code == 200
        x = random_pixels(9, (2, 4, 4, 3))
        body = {"instances": x.tolist(), "parameters": {"signature_name": "serving_default"}}
        r = requests.post(url + vertex.predict_route, data=json.dumps(body), timeout=30)
        assert r.status_code == 200
        assert_upscaled_equal(np.array(r.json()["predictions"]), reference_upscale(tiny_model, x))
        # Vertex batch prediction sends several jsonl lines per request: images of different sizes
        sizes = [(4, 4), (5, 8), (4, 4), (3, 2)]
        xs = [random_pixels(20 + i, (1, h, w, 3)) for i, (h, w) in enumerate(sizes)]
        body = {"instances": [x[0].tolist() for x in xs]}
        r = requests.post(url + vertex.predict_route, data=json.dumps(body), timeout=30)
        assert r.status_code == 200, r.text[:300]
        predictions = r.json()["predictions"]
        assert len(predictions) == len(xs)
        for x, p in zip(xs, predictions, strict=True):  # each in its own place, at its own size
            assert_upscaled_equal(np.array(p)[None], reference_upscale(tiny_model, x))
    with pytest.raises(ValueError, match="AIP_STORAGE_URI"):
        vertex_from_env({})


def test_graceful_stop_finishes_in_flight_requests_and_slow_requests_get_504(exported, tmp_path):
    from sr_tf.serving.service import Limits

    copy_version(exported, tmp_path / "g", 1)
    config = ServerConfig(rest_port=0, grpc_port=None, poll_seconds=0, grace_seconds=10,
                          limits=Limits(timeout_seconds=0.5))
    srv = ModelServer([ModelConfig("g", str(tmp_path / "g"))], config).start()
    url = f"http://127.0.0.1:{srv.rest_port}"
    servable = srv.manager.resolve("g")
    real_run, entered, delay = servable.run, threading.Event(), [0.3]

    def slow_run(signature, inputs):
        entered.set()
        time.sleep(delay[0])
        return real_run(signature, inputs)

    servable.run = slow_run
    body = json.dumps({"instances": random_pixels(1).tolist()})
    delay[0] = 1.0
    late = requests.post(f"{url}/v1/models/g:predict", data=body, timeout=30)
    assert late.status_code == 504 and "--request-timeout-seconds" in late.json()["error"]
    delay[0], result = 0.4, {}
    entered.clear()
    t = threading.Thread(target=lambda: result.update(r=requests.post(f"{url}/v1/models/g:predict", data=body, timeout=30)))
    t.start()
    assert entered.wait(10)
    srv.stop()  # while the request is still running
    t.join()
    assert result["r"].status_code == 200 and "predictions" in result["r"].json()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/v1/models/g", timeout=2)


def test_reload_config_over_grpc_adds_a_model(exported, tmp_path):
    import grpc
    from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

    copy_version(exported, tmp_path / "first", 1)
    copy_version(exported, tmp_path / "second", 4)
    with ModelServer([ModelConfig("first", str(tmp_path / "first"))],
                     ServerConfig(rest_port=0, grpc_port=0, poll_seconds=0)) as srv:
        url = f"http://127.0.0.1:{srv.rest_port}"
        assert requests.get(f"{url}/v1/models/second", timeout=10).status_code == 404
        request = model_management_pb2.ReloadConfigRequest()
        for name in ("first", "second"):
            request.config.model_config_list.config.add(name=name, base_path=str(tmp_path / name),
                                                        model_platform="tensorflow")
        with grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}") as channel:
            response = model_service_pb2_grpc.ModelServiceStub(channel).HandleReloadConfigRequest(request, 30)
        assert response.status.error_code == 0
        assert list(_versions(url, "second")) == [4]
        assert _versions(url, "first")[1]["state"] == "AVAILABLE"


def test_half_copied_version_becomes_available_once_complete(exported, tmp_path, tiny_model):
    import shutil

    base = tmp_path / "copy"
    copy_version(exported, base, 1)
    config = ServerConfig(rest_port=0, grpc_port=None, poll_seconds=0.1, load_retries=40, load_retry_interval=0.25)
    x = random_pixels(11)
    with ModelServer([ModelConfig("copy", str(base))], config) as srv:
        url = f"http://127.0.0.1:{srv.rest_port}"
        v2 = base / "2"
        v2.mkdir()
        shutil.copy(exported / "saved_model.pb", v2)  # a non-atomic copy: the graph first ...
        assert _wait_for(lambda: 2 in _versions(url, "copy"))
        time.sleep(1.5)  # ... the variables some seconds later; loads fail meanwhile
        assert _versions(url, "copy")[2]["state"] != "AVAILABLE"
        r = requests.post(f"{url}/v1/models/copy:predict", data=json.dumps({"instances": x.tolist()}), timeout=30)
        assert r.status_code == 200  # version 1 keeps serving
        assert _versions(url, "copy")[1]["state"] == "AVAILABLE"
        for item in exported.iterdir():
            if item.name != "saved_model.pb":
                (shutil.copytree if item.is_dir() else shutil.copy)(item, v2 / item.name)
        assert _wait_for(lambda: _versions(url, "copy")[2]["state"] == "AVAILABLE", 30)
        assert _wait_for(lambda: _versions(url, "copy")[1]["state"] == "END")
        r = requests.post(f"{url}/v1/models/copy/versions/2:predict", data=json.dumps({"instances": x.tolist()}),
                          timeout=30)
        assert r.status_code == 200
        assert_upscaled_equal(np.array(r.json()["predictions"]), reference_upscale(tiny_model, x))


def test_a_disconnected_clients_queued_request_is_dropped(exported, tmp_path):
    import socket

    from sr_tf.serving.batching import BatchingConfig

    copy_version(exported, tmp_path / "d", 1)
    config = ServerConfig(rest_port=0, grpc_port=None, poll_seconds=0, batching=BatchingConfig(num_batch_threads=1))
    with ModelServer([ModelConfig("d", str(tmp_path / "d"))], config) as srv:
        servable = srv.manager.resolve("d")
        real_run, seen, release = servable.run, [], threading.Event()

        def slow_run(signature, inputs):
            seen.append(float(inputs["images"][0, 0, 0, 0]))
            release.wait(20)
            return real_run(signature, inputs)

        servable.run = slow_run
        url = f"http://127.0.0.1:{srv.rest_port}/v1/models/d:predict"
        first = threading.Thread(target=lambda: requests.post(
            url, data=json.dumps({"instances": np.full((1, 2, 2, 3), 1.0).tolist()}), timeout=30))
        first.start()
        assert _wait_for(lambda: seen == [1.0])  # the only worker is busy now
        body = json.dumps({"instances": np.full((1, 2, 2, 3), 2.0).tolist()}).encode()
        with socket.create_connection(("127.0.0.1", srv.rest_port)) as sock:
            sock.sendall(b"POST /v1/models/d:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            assert _wait_for(lambda: srv.core.scheduler.pending == 2)
        # the client is gone: its request leaves the queue before the worker is free
        assert _wait_for(lambda: srv.core.scheduler.pending == 1, 10)
        release.set()
        first.join(30)
        time.sleep(0.3)
        assert seen == [1.0]  # the dropped request never ran
