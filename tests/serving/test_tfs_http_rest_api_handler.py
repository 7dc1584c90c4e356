"""TF Serving's own tests of its REST handler, ported against `sr-tf serve`:
tensorflow_serving/model_servers/http_rest_api_handler_test.cc (and the dispatch and CORS rules of
http_server.cc that wrap the handler).

TF Serving's fixture serves half_plus_two (version 123, label "stable"); ours serves the tiny SR
model of conftest.py as `tiny` version 1 with the label "stable" -> 1, so the expected numbers
are the Keras model's and the expected texts are TF Serving's (file:line given per case).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import requests
from serving_helpers import assert_upscaled_equal, random_pixels, reference_upscale

MODEL, VERSION, LABEL = "tiny", 1, "stable"


@pytest.fixture(scope="module")
def url(exported):
    from sr_tf.serving.models import ModelConfig
    from sr_tf.serving.server import ModelServer, ServerConfig

    config = ServerConfig(rest_port=0, grpc_port=None, poll_seconds=0, grace_seconds=5, cors=True)
    with ModelServer([ModelConfig(MODEL, str(exported.parent), labels={LABEL: VERSION})], config) as srv:
        yield f"http://127.0.0.1:{srv.rest_port}"


def call(url: str, method: str, path: str, body: str | bytes = b""):
    r = requests.request(method, url + path, data=body, timeout=30)
    return r.status_code, (r.json() if r.content else None), r.headers


def error(url, method, path, body=b"") -> tuple[int, str]:
    status, payload, headers = call(url, method, path, body)
    assert headers["Content-Type"] == "application/json"  # http_rest_api_util.cc AddHeaders
    return status, payload["error"]


def test_kPathRegex(url):  # http_rest_api_handler_test.cc:173 ("(?i)/v1/.*", http_rest_api_util.h:33)
    assert error(url, "GET", "/v1/models")[0] == 400  # handled (and refused: no model name)
    for path in ("/statuspage", "/index"):  # not TF Serving's: not found (our web page lives outside /v1/)
        assert call(url, "GET", path)[0] == 404


@pytest.mark.parametrize("method,path,message", [  # http_rest_api_handler_test.cc:179 UnsupportedApiCalls
    ("GET", "/v1/foo", "Malformed request: GET /v1/foo"),  # http_rest_api_handler.cc:74
    ("POST", "/v1/foo", "Malformed request: POST /v1/foo"),
    ("GET", "/v1/models", "Missing model name in request."),  # http_rest_api_handler.cc:166
    ("GET", "/v1/models/debug/model_name", "Malformed request"),
    ("POST", "/v1/models", "Malformed request: POST /v1/models"),
    ("GET", "/v1/models/foo:predict", "Malformed request"),
    ("GET", "/v1/models/foo/version/50:predict", "Malformed request"),
    ("POST", "/v1/models/foo/version/50:regress", "Malformed request"),
    ("POST", "/v1/models/foo/versions/HELLO:regress", "Malformed request"),
    ("POST", f"/v1/models/foo/versions/{2**64 - 1}:regress",  # http_rest_api_util.cc:110
     f"Failed to convert version: {2**64 - 1} to numeric."),
    ("POST", "/v1/models/foo/metadata", "Malformed request"),
    ("POST", "/v1/models/foo/label/some_label:regress", "Malformed request"),
    ("POST", "/v1/models/foo/versions/50/labels/some_label:regress", "Malformed request"),
    ("POST", "/v1/models/foo/versions/some_label:regress", "Malformed request"),
])
def test_UnsupportedApiCalls(url, method, path, message):
    status, text = error(url, method, path)
    assert status == 400 and message in text, text  # INVALID_ARGUMENT -> 400 (http_server.cc:57)


def test_url_patterns_match_case_insensitively(url):  # the "(?i)" of http_rest_api_util.cc:30-33
    status, payload, _ = call(url, "GET", f"/V1/MODELS/{MODEL}")
    assert status == 200 and payload["model_version_status"][0]["version"] == str(VERSION)
    # the method word itself is compared as written (http_rest_api_handler.cc:88): not a predict
    assert error(url, "POST", f"/v1/models/{MODEL}:PREDICT", '{"instances": [1]}') == (
        400, f"Malformed request: POST /v1/models/{MODEL}:PREDICT")


@pytest.mark.parametrize("path", [  # http_rest_api_handler_test.cc:270 PredictModelNameVersionErrors
    "/v1/models/foo:predict", "/v1/models/foo/versions/50:predict", f"/v1/models/{MODEL}99:predict",
    f"/v1/models/{MODEL}/versions/99:predict",
])
def test_PredictModelNameVersionErrors(url, path):
    status, text = error(url, "POST", path, '{ "instances": [1] }')
    assert status == 404 and text.startswith("Servable not found for request:"), text  # NOT_FOUND -> 404


def test_PredictRequestErrors(url):  # http_rest_api_handler_test.cc:295
    path = f"/v1/models/{MODEL}:predict"
    assert error(url, "POST", path, "") == (400, "JSON Parse error: The document is empty")  # json_tensor.cc:475
    status, text = error(url, "POST", path, "instances = [1, 2]")
    assert status == 400 and "JSON Parse error: Invalid value" in text  # json_tensor.cc:487
    status, text = error(url, "POST", path, '{ "instances": ["x", "y"] }')
    assert status == 400 and "not of expected type: float" in text  # json_tensor.cc:266
    status, text = error(url, "POST", f"/v1/models/{MODEL}/labels/nonexistent:predict", '{ "instances": ["x", "y"] }')
    assert (status, text) == (400, "Unrecognized servable version label: nonexistent")  # server_core.cc:891
    status, text = error(url, "POST", path, '{ "signature_name": 100 }')
    assert status == 400 and "'signature_name' key must be a string value." in text  # json_tensor.cc:283


def test_unknown_signature_over_rest(url):  # http_rest_api_handler.cc:236 GetInfoMap
    status, text = error(url, "POST", f"/v1/models/{MODEL}:predict", '{"signature_name": "x", "instances": [1]}')
    assert (status, text) == (400, 'Serving signature name: "x" not found in signature def')


@pytest.mark.parametrize("path,body,key", [  # http_rest_api_handler_test.cc:342 Predict
    (f"/v1/models/{MODEL}:predict", "instances", "predictions"),
    (f"/v1/models/{MODEL}/versions/{VERSION}:predict", "instances", "predictions"),
    (f"/v1/models/{MODEL}/labels/{LABEL}:predict", "instances", "predictions"),
    (f"/v1/models/{MODEL}/versions/{VERSION}:predict", "signature+instances", "predictions"),
    (f"/v1/models/{MODEL}/versions/{VERSION}:predict", "signature+inputs", "outputs"),
])
def test_Predict(url, tiny_model, path, body, key):
    x = random_pixels(25, (2, 3, 4, 3))
    payload = {"inputs" if body.endswith("inputs") else "instances": x.tolist()}
    if body.startswith("signature"):
        payload["signature_name"] = "serving_default"
    status, out, headers = call(url, "POST", path, json.dumps(payload))
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert list(out) == [key]  # one output: its name is left out (json_tensor.cc MakeJsonFromTensors)
    assert_upscaled_equal(np.array(out[key]), reference_upscale(tiny_model, x))


@pytest.mark.parametrize("what,prefix", [("regress", "regression"), ("classify", "classification")])
@pytest.mark.parametrize("path", [f"/v1/models/{MODEL}", f"/v1/models/{MODEL}/versions/{VERSION}",
                                  f"/v1/models/{MODEL}/labels/{LABEL}"])
def test_Regress_and_Classify(url, path, what, prefix):
    # http_rest_api_handler_test.cc:403 Regress, :436 Classify. half_plus_two has regress_x_to_y and
    # classify_x_to_y signatures; our model has none, so TF Serving's answer for it is expected:
    # the named signature is missing (classifier.cc:160 / regressor.cc:155) ...
    body = json.dumps({"signature_name": f"{what}_x_to_y", "examples": [{"x": 80.0}]})
    assert error(url, "POST", f"{path}:{what}", body) == (400, f"No signature was found with the name: {what}_x_to_y")
    # ... and serving_default has no "inputs" input (classifier.cc:197, regressor.cc:187)
    status, text = error(url, "POST", f"{path}:{what}", json.dumps({"examples": [{"x": 80.0}]}))
    assert status == 400 and text.startswith(f"No {prefix} inputs found in SignatureDef: "), text
    assert 'method_name: "tensorflow/serving/predict"' in text  # the SignatureDef's DebugString
    # the body is parsed and checked before the model is looked at (http_rest_api_handler.cc:120)
    status, text = error(url, "POST", f"/v1/models/nothere:{what}", '{"examples": {"x": 1}}')
    assert status == 400 and "Expecting 'examples' value to be an list/array" in text, text


@pytest.mark.parametrize("path", [f"/v1/models/{MODEL}", f"/v1/models/{MODEL}/versions/{VERSION}",
                                  f"/v1/models/{MODEL}/labels/{LABEL}"])
def test_GetStatus(url, path):  # http_rest_api_handler_test.cc:459
    status, payload, headers = call(url, "GET", path)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert payload == {"model_version_status": [
        {"version": str(VERSION), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}


def test_GetModelMetadata(url, exported):  # http_rest_api_handler_test.cc:519
    # the expected file (testdata/saved_model_half_plus_two_2_versions_metadata.json) is the
    # SignatureDefMap printed with proto field names, int64 as strings and every field present
    status, payload, headers = call(url, "GET", f"/v1/models/{MODEL}/metadata")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert payload["model_spec"] == {"name": MODEL, "signature_name": "", "version": str(VERSION)}
    sigs = payload["metadata"]["signature_def"]["signature_def"]
    default = sigs["serving_default"]
    assert set(default) == {"inputs", "outputs", "method_name", "defaults"} and default["defaults"] == {}
    assert default["method_name"] == "tensorflow/serving/predict"
    images = default["inputs"]["images"]
    assert images["dtype"] == "DT_FLOAT" and images["tensor_shape"]["unknown_rank"] is False
    assert images["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}] * 3 + [{"size": "3", "name": ""}]
    assert images["name"].startswith("serving_default_images")


# --- http_server.cc: the dispatcher around the handler -----------------------------------
def test_cors_headers_on_every_answer(url):  # http_server.cc:172, http_rest_api_util.cc:38 AddCORSHeaders
    want = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST, GET",
            "Access-Control-Allow-Headers": "Content-Type"}
    for method, path in (("GET", f"/v1/models/{MODEL}"), ("GET", "/v1/foo"), ("POST", "/v1/models/x:predict")):
        headers = call(url, method, path)[2]
        assert {k: headers.get(k) for k in want} == want


def test_cors_preflight(url):  # http_server.cc:160-169
    r = requests.options(f"{url}/v1/models/{MODEL}:predict", headers={"Origin": "https://example.com"}, timeout=10)
    assert r.status_code == 200 and r.content == b"" and r.headers["Access-Control-Allow-Methods"] == "POST, GET"
    r = requests.options(f"{url}/v1/models/{MODEL}:predict", timeout=10)  # "Origin header is missing"
    assert r.status_code == 400 and r.content == b""


def test_no_cors_headers_without_the_flag(rest_url):  # core_->enable_cors_support() false
    r = requests.get(f"{rest_url}/v1/models/tiny", timeout=10)
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers
