"""The REST API, called as TF Serving's docs do (plain JSON over HTTP with `requests`)."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pytest
import requests
from PIL import Image
from serving_helpers import assert_upscaled_equal, image_bytes, random_pixels, reference_upscale

from sr_tf.serving.clients import RestClient, ServingClientError


def _post(url, payload):
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    return requests.post(url, data=body, timeout=30)


def test_status_lists_the_available_version(rest_url):
    r = requests.get(f"{rest_url}/v1/models/tiny", timeout=10)
    assert r.status_code == 200
    assert r.json() == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]}
    assert requests.get(f"{rest_url}/v1/models/tiny/versions/1", timeout=10).status_code == 200


def test_metadata_uses_proto_field_names_and_string_int64(rest_url):
    r = requests.get(f"{rest_url}/v1/models/tiny/metadata", timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert body["model_spec"] == {"name": "tiny", "signature_name": "", "version": "1"}
    sigs = body["metadata"]["signature_def"]["signature_def"]
    default = sigs["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    images = default["inputs"]["images"]
    assert images["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in images["tensor_shape"]["dim"]] == ["-1", "-1", "-1", "3"]
    assert sigs["encoded_image"]["outputs"]["upscaled_bytes"]["dtype"] == "DT_STRING"


def test_row_and_columnar_predict_equal_the_keras_model(rest_url, tiny_model):
    x = random_pixels(0, (2, 6, 5, 3))
    want = reference_upscale(tiny_model, x)
    row = _post(f"{rest_url}/v1/models/tiny:predict", {"instances": x.tolist()})
    col = _post(f"{rest_url}/v1/models/tiny/versions/1:predict",
                {"signature_name": "serving_default", "inputs": {"images": x.tolist()}})
    assert row.status_code == 200 and col.status_code == 200
    assert_upscaled_equal(np.array(row.json()["predictions"]), want)
    assert_upscaled_equal(np.array(col.json()["outputs"]), want)
    # the whole-number pixels are written as decimals (217.0), as TF Serving's WriteDecimal does
    assert re.search(rb"[\[,]-?\d+[,\]]", row.content) is None and b".0," in row.content
    assert re.search(rb"[\[,]-?\d+[,\]]", col.content) is None and b".0," in col.content
    assert RestClient(rest_url, "tiny").predict(x).dtype == np.float32


def test_b64_images_round_trip_with_the_bytes_alias(rest_url, tiny_model):
    rgb = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    payload = {"signature_name": "encoded_image",
               "instances": [{"b64": base64.b64encode(image_bytes(rgb)).decode()}]}
    r = _post(f"{rest_url}/v1/models/tiny:predict", payload)
    assert r.status_code == 200
    (pred,) = r.json()["predictions"]
    assert set(pred) == {"b64"}
    out = np.array(Image.open(io.BytesIO(base64.b64decode(pred["b64"]))))
    assert_upscaled_equal(out, reference_upscale(tiny_model, rgb[None].astype(np.float32))[0])


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_pixels_are_refused_naming_the_cause(rest_url, token):
    # The bare tokens parse (TF Serving's JSON), but a pixel cannot be NaN: a 400, not an all-NaN image.
    body = f'{{"inputs": [[[[1, 2, 3], [{token}, 2, 3]]]]}}'.encode()
    r = _post(f"{rest_url}/v1/models/tiny:predict", body)
    assert r.status_code == 400, r.text
    assert "NaN or Infinity" in r.json()["error"] and "[0, 0, 1, 0]" in r.json()["error"]


@pytest.mark.parametrize("path,payload,status,message", [
    ("/v1/models/foo:predict", {"instances": [1]}, 404, "Servable not found for request: Latest(foo)"),
    ("/v1/models/tiny/versions/9:predict", {"instances": [1]}, 404, "Servable not found for request: Specific(tiny, 9)"),
    ("/v1/models/tiny:predict", {"foo": 1}, 400, "Missing 'inputs' or 'instances' key"),
    ("/v1/models/tiny:predict", "{not json", 400, "JSON Parse error"),
    ("/v1/models/tiny:predict", {"signature_name": "x", "instances": [1]}, 400,
     'Serving signature name: "x" not found in signature def'),
    ("/v1/models/tiny:predict", {"instances": [[[[1, 2, 3]]], [[[1, 2, 3]]], [[[1, 2, 3], [4, 5, 6]]]]}, 400,
     "Failed to process element: 2 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 3 but got: 6"),
    ("/v1/models/tiny:predict", {"instances": [[[["x", 2, 3]]]]}, 400,
     'JSON Value: "x" Type: String is not of expected type: float'),
    # TF Serving parses the body first (json_tensor.cc), then finds no classification signature
    ("/v1/models/tiny:classify", {"examples": []}, 400, "'examples' value is an empty array"),
    ("/v1/models/tiny:classify", {"examples": [{"x": 1}]}, 400, "No classification inputs found in SignatureDef"),
])
def test_errors_have_tf_serving_bodies_and_codes(rest_url, path, payload, status, message):
    r = _post(rest_url + path, payload)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"}
    assert message in r.json()["error"]


def test_status_of_unknown_model_is_404(rest_url):
    r = requests.get(f"{rest_url}/v1/models/foo", timeout=10)
    assert r.status_code == 404
    assert r.json() == {"error": "Could not find any versions of model foo"}


def test_body_and_pixel_limits(rest_url):
    big = b'{"instances": [' + b"0," * (1024 * 1024) + b"0]}"
    r = requests.post(f"{rest_url}/v1/models/tiny:predict", data=big, timeout=30)
    assert r.status_code == 413 and "--max-request-bytes" in r.json()["error"]
    # the server allows 64*64*32 = 131072 input pixels per request: 24 images of 80x80 are too many
    r = _post(f"{rest_url}/v1/models/tiny:predict", {"inputs": np.zeros((24, 80, 80, 3), int).tolist()})
    assert r.status_code == 400 and "--max-pixels" in r.json()["error"]
    one = _post(f"{rest_url}/v1/models/tiny:predict", {"inputs": np.zeros((1, 80, 80, 3)).tolist()})
    assert one.status_code == 200


def test_prometheus_metrics(rest_url):
    _post(f"{rest_url}/v1/models/tiny:predict", {"instances": random_pixels(3).tolist()})
    r = requests.get(f"{rest_url}/monitoring/prometheus/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    lines = r.text.splitlines()
    assert any(line.startswith("# TYPE") for line in lines)
    ok = [line for line in lines if line.startswith("sr_tf_serving_requests_total{") and 'status="OK"' in line]
    assert ok and float(ok[0].split()[-1]) >= 1


def test_rest_client_arrays_and_images(rest_url, tiny_model):
    client = RestClient(rest_url, "tiny")
    x = random_pixels(4, (1, 5, 6, 3))
    assert_upscaled_equal(client.predict(x), reference_upscale(tiny_model, x))
    gray = np.random.default_rng(5).integers(0, 256, (4, 5), dtype=np.uint8)
    out = Image.open(io.BytesIO(client.upscale_image(image_bytes(gray))))
    assert out.mode == "L" and out.size == (10, 8)
    with pytest.raises(ServingClientError) as err:
        RestClient(rest_url, "nope").predict(x)
    assert err.value.status == 404
    client.close()


def test_rest_client_honours_the_proxy_environment_read_when_created(rest_url, monkeypatch):
    """requests' trust_env is replaced by one read of the environment: HTTP_PROXY still routes calls, NO_PROXY
    still bypasses it, and later changes of the environment do not move a client already made."""
    import http.server
    import threading

    seen = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            seen.append(self.path)
            body = b'{"model_version_status": []}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        proxied = RestClient(rest_url, "tiny")
        assert proxied.status() == {"model_version_status": []}
        assert seen == [f"{rest_url}/v1/models/tiny"]  # the absolute URL a proxy is sent
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        direct = RestClient(rest_url, "tiny")
        assert direct.status()["model_version_status"][0]["state"] == "AVAILABLE"
        proxied.status()
        assert len(seen) == 2  # made before NO_PROXY: still proxied
    finally:
        proxy.shutdown()
