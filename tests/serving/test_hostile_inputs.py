"""What an attacker (or a careless client) sends, against a real `sr-tf serve` process.

The server runs in a subprocess under a 5 GiB address-space cap, so a regression that starts
allocating for a decompression bomb fails the test instead of taking the machine's memory. Each
case must be a 4xx naming its cause, answered fast, without the server's memory growing; the
server must still answer normally afterwards.
"""

from __future__ import annotations

import base64
import io
import json
import time

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from PIL import Image
from serving_helpers import ServeProcess, bomb_png, copy_version, free_port, image_bytes, rss_mib
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

MODEL = "tiny"
pytestmark = pytest.mark.large  # one server process for the module (~15 s to start)


@pytest.fixture(scope="module")
def served(exported, tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile") / MODEL
    copy_version(exported, base, 1)
    rest, grpc_port = free_port(), free_port()
    url = f"http://127.0.0.1:{rest}"
    # The dashed flags and --max-pixels exist on every version, so these tests also run on older code.
    with ServeProcess(["--model-base-path", str(base), "--rest-port", str(rest), "--grpc-port", str(grpc_port),
                       "--max-pixels", "1000000"], f"{url}/v1/models/{MODEL}") as proc:
        yield proc, url, f"127.0.0.1:{grpc_port}"


def _predict(url, body, timeout=60):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(f"{url}/v1/models/{MODEL}:predict", data=data, timeout=timeout)


def _b64_request(data: bytes) -> dict:
    return {"signature_name": "encoded_image", "instances": [{"b64": base64.b64encode(data).decode()}]}


def _assert_still_serves(url):
    r = _predict(url, _b64_request(image_bytes(np.zeros((4, 4, 3), np.uint8))))
    assert r.status_code == 200, r.text
    assert Image.open(io.BytesIO(base64.b64decode(r.json()["predictions"][0]["b64"]))).size == (8, 8)


def test_decompression_bomb_png_is_refused_from_its_header(served):
    proc, url, _ = served
    bomb = bomb_png(13500, 13500)  # 22 KB; 182 M pixels: 2 x 2.19 GB once decoded to float
    assert len(bomb) < 30_000
    before, start = rss_mib(proc.pid), time.monotonic()
    r = _predict(url, _b64_request(bomb))
    elapsed, grown = time.monotonic() - start, rss_mib(proc.pid) - before
    assert r.status_code == 400, r.text[:300]
    assert "182250000" in r.json()["error"] or "too large" in r.json()["error"], r.json()
    assert elapsed < 10, f"refusing took {elapsed:.1f} s"
    assert grown < 100, f"the server grew by {grown:.0f} MiB"
    _assert_still_serves(url)


def test_tiny_grpc_proto_with_a_huge_shape_is_refused_before_it_is_built(served):
    proc, url, target = served
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, float_val=[0.0],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s)
                                                            for s in (1, 8192, 8192, 3)]),
    )
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["images"].CopyFrom(tensor)
    assert request.ByteSize() < 100  # 46 bytes of tensor claiming 768 MB
    before = rss_mib(proc.pid)
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(request, 30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert "67108864 input pixels" in info.value.details()
    assert rss_mib(proc.pid) - before < 100
    # the same over gRPC with a NaN: INVALID_ARGUMENT, not an all-NaN image
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(np.full((1, 2, 2, 3), np.nan, np.float32)))
    with grpc.insecure_channel(target) as channel:
        with pytest.raises(grpc.RpcError) as info:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, 30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "NaN" in info.value.details()


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_in_a_json_tensor_are_400(served, token):
    _, url, _ = served
    r = _predict(url, f'{{"instances": [[[[{token}, 1, 2], [3, 4, 5]]]]}}'.encode())
    assert r.status_code == 400, r.text[:300]
    assert "NaN or Infinity" in r.json()["error"]


def test_deeply_nested_json_is_400_not_500(served):
    _, url, _ = served
    deep = b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    r = _predict(url, deep)
    assert r.status_code == 400, r.text[:300]
    assert "nesting" in r.json()["error"]
    # deep enough for Python's recursion limit, within the parser's: still a clean 400
    nested = b'{"instances": [[[[1, 2, 3]]], ' + b"[" * 990 + b"1" + b"]" * 990 + b"]}"
    r = _predict(url, nested)
    assert r.status_code == 400, r.text[:300]
    _assert_still_serves(url)


@pytest.mark.parametrize("body,message", [
    ({"signature_name": ["encoded_image"], "instances": [1]}, "'signature_name' key must be a string value."),
    ({"signature_name": {"a": 1}, "instances": [1]}, "'signature_name' key must be a string value."),
    ({"signature_name": 7, "inputs": [1]}, "'signature_name' key must be a string value."),
    ({"instances": None}, "instances"),
    ({"instances": "abc"}, "instances"),
    ({"instances": [None]}, "JSON Value"),
    ({"inputs": {"images": 1, "x": 2}}, "shape"),  # TF Serving ignores the extra key too
    # {"b64": 5} is no base64 object (json_tensor.cc IsValBase64Object), so a named input "b64"
    ({"signature_name": "encoded_image", "instances": [{"b64": 5}]}, "does not have named input: b64"),
    ({"signature_name": "encoded_image", "instances": [{"b64": "a", "x": 1}]}, "b64"),
    ({"signature_name": "encoded_image", "instances": [{"b64": "!!!"}]}, "base64"),
    (b"", "JSON Parse error"),
    (b"\xff\xfe\x00", "JSON Parse error"),
    (b"[1e400]", "JSON Parse error"),
    (b'{"instances": [' + b"0," * 1_100_000 + b"0]}", "values"),
], ids=lambda v: str(v)[:40] if isinstance(v, (bytes, dict)) else None)
def test_hostile_bodies_are_400_naming_the_cause(served, body, message):
    _, url, _ = served
    r = _predict(url, body)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert message in r.json()["error"], r.json()


def test_undecodable_images_are_400_with_the_real_reason(served):
    _, url, _ = served
    r = _predict(url, _b64_request(b"definitely not an image"))
    assert r.status_code == 400 and "not an image" in r.json()["error"], r.text[:300]
    png = image_bytes(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8))
    corrupt = png[:60] + b"x" * 40 + png[100:]  # a valid header, damaged pixel data
    r = _predict(url, _b64_request(corrupt))
    assert r.status_code == 400, r.text[:300]
    error = r.json()["error"]
    assert "Graph execution error" not in error and "PNG" in error, error
    tiff = io.BytesIO()
    Image.new("RGB", (4, 4)).save(tiff, format="TIFF")
    r = _predict(url, _b64_request(tiff.getvalue()))
    assert r.status_code == 400 and "TIFF" in r.json()["error"], r.text[:300]
