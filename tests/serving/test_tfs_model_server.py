"""TF Serving's own end-to-end tests, ported against `sr-tf serve`:
tensorflow_serving/model_servers/tensorflow_model_server_test.py and its base
(test_util/tensorflow_model_server_test_base.py).

Upstream starts tensorflow_model_server on half_plus_two (y = x / 2 + 2, version 123). Ours
serves conftest.py's tiny SR model (`tiny`, version 1; expected values from the Keras model),
and, for the cases about SavedModels written by tf.saved_model.save, the same small tf.Modules
upstream writes (12.0, 1.0, 2.0 are upstream's expected outputs). Each test names its upstream
test; the expected answers come from the source line given.
"""

from __future__ import annotations

import json
import time

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from serving_helpers import assert_upscaled_equal, copy_version, random_pixels, reference_upscale
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from sr_tf.cli import main

TIMEOUT = 30


def _stub(target: str):
    return prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))


def _rpc_error(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call(request, TIMEOUT)
    return err.value


def verify_predict_request(target, tiny_model, model_name="tiny", specify_output=True,
                           signature_name="serving_default", expected_version=1):
    """The base's VerifyPredictRequest (tensorflow_model_server_test_base.py:251) for an SR model:
    inputs in `float_val`, and the answer read from `float_val` as clients in other languages do."""
    x = random_pixels(7, (1, 3, 2, 3))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    request.inputs["images"].dtype = types_pb2.DT_FLOAT
    request.inputs["images"].float_val.extend(x.reshape(-1).tolist())
    for d in x.shape:
        request.inputs["images"].tensor_shape.dim.add().size = d
    if specify_output:
        request.output_filter.append("upscaled")
    result = _stub(target).Predict(request, TIMEOUT)
    assert "upscaled" in result.outputs
    out = result.outputs["upscaled"]
    assert out.dtype == types_pb2.DT_FLOAT and not out.tensor_content  # predict_util.cc:172 kAsProtoField
    assert [d.size for d in out.tensor_shape.dim] == [1, 6, 4, 3]
    assert_upscaled_equal(np.array(out.float_val).reshape(1, 6, 4, 3), reference_upscale(tiny_model, x))
    # _VerifyModelSpec (base:352)
    assert (result.model_spec.name, result.model_spec.signature_name, result.model_spec.version.value) == (
        model_name, signature_name, expected_version)


def test_GetModelStatus(grpc_target):  # tensorflow_model_server_test.py:97
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "tiny"
    stub = model_service_pb2_grpc.ModelServiceStub(grpc.insecure_channel(grpc_target))
    result = stub.GetModelStatus(request, TIMEOUT)
    assert len(result.model_version_status) == 1
    assert result.model_version_status[0].version == 1
    assert result.model_version_status[0].status.error_code == 0


def test_GetModelMetadata(grpc_target):  # tensorflow_model_server_test.py:116
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "tiny"
    request.metadata_field.append("signature_def")
    result = _stub(grpc_target).GetModelMetadata(request, TIMEOUT)
    assert result.model_spec.name == "tiny" and result.model_spec.version.value == 1
    assert len(result.metadata) == 1 and "signature_def" in result.metadata


@pytest.mark.parametrize("method", ["Classify", "Regress"])
def test_Classify_and_Regress(grpc_target, method):
    # tensorflow_model_server_test.py:138 _TestClassify, :175 _TestRegress (and their Tf2 twins):
    # half_plus_two has classify_x_to_y / regress_x_to_y signatures; ours has none, so TF Serving's
    # answer for it is expected (classifier.cc:160, regressor.cc:155; classifier.cc:197)
    pb2 = classification_pb2.ClassificationRequest if method == "Classify" else regression_pb2.RegressionRequest
    request = pb2()
    request.model_spec.name = "tiny"
    request.model_spec.signature_name = f"{method.lower()}_x_to_y"
    request.input.example_list.examples.add().features.feature["x"].float_list.value.extend([2.0])
    err = _rpc_error(getattr(_stub(grpc_target), method), request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == f"No signature was found with the name: {method.lower()}_x_to_y"
    request.model_spec.signature_name = ""
    err = _rpc_error(getattr(_stub(grpc_target), method), request)
    kind = "classification" if method == "Classify" else "regression"
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith(f"No {kind} inputs found in SignatureDef: ")


def test_MultiInference(grpc_target):  # tensorflow_model_server_test.py:207 _TestMultiInference
    request = inference_pb2.MultiInferenceRequest()
    request.tasks.add().model_spec.name = "tiny"
    request.tasks[0].model_spec.signature_name = "regress_x_to_y"
    request.tasks[0].method_name = "tensorflow/serving/regress"
    request.tasks.add().model_spec.name = "tiny"
    request.tasks[1].model_spec.signature_name = "classify_x_to_y"
    request.tasks[1].method_name = "tensorflow/serving/classify"
    request.input.example_list.examples.add().features.feature["x"].float_list.value.extend([2.0])
    err = _rpc_error(_stub(grpc_target).MultiInference, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # multi_inference.cc:68
    assert err.details() == "Requested signature not found in model graph: regress_x_to_y"
    err = _rpc_error(_stub(grpc_target).MultiInference, inference_pb2.MultiInferenceRequest())
    assert (err.code(), err.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified.")


def test_PredictSavedModel(grpc_target, tiny_model):  # tensorflow_model_server_test.py:252 (_TestPredict)
    verify_predict_request(grpc_target, tiny_model)
    verify_predict_request(grpc_target, tiny_model, specify_output=False)


def test_predict_request_checks(grpc_target):
    # What predict_impl.cc / server_core.cc / predict_util.cc answer to malformed PredictRequests
    stub = _stub(grpc_target)
    err = _rpc_error(stub.Predict, predict_pb2.PredictRequest())
    assert (err.code(), err.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")  # predict_impl.cc:40
    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = "serving_default"
    err = _rpc_error(stub.Predict, request)
    assert (err.code(), err.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "ModelSpec has no name specified.")  # :844
    request.model_spec.name = "tiny"
    err = _rpc_error(stub.Predict, request)  # predict_util.cc:62 VerifyRequestInputsSize
    assert (err.code(), err.details()) == (grpc.StatusCode.INVALID_ARGUMENT, (
        "input size does not match signature: 0!=1 len({}) != len({images}). Sent extra: {}. "
        "Missing but required: {images}."))
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(random_pixels(1, (1, 2, 2, 3))))
    request.output_filter.extend(["upscaled", "upscaled"])
    err = _rpc_error(stub.Predict, request)  # predict_util.cc:139
    assert (err.code(), err.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "duplicate output tensor alias: upscaled")
    del request.output_filter[:]
    request.output_filter.append("nope")
    err = _rpc_error(stub.Predict, request)  # predict_util.cc:131
    assert err.details() == "output tensor alias not found in signature: nope Outputs expected to be in the set {upscaled}."
    del request.output_filter[:]
    request.model_spec.signature_name = "x"
    err = _rpc_error(stub.Predict, request)  # predict_util.cc:90
    assert (err.code(), err.details()) == (grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "x" not found.')


def test_GoodModelConfig(exported, tmp_path, tiny_model):  # tensorflow_model_server_test.py:277
    from sr_tf.serving.models import parse_model_config_text
    from sr_tf.serving.server import ModelServer, ServerConfig

    copy_version(exported, tmp_path / "three", 3)
    configs = parse_model_config_text(f"""model_config_list {{
      config {{ name: "half_plus_two" base_path: "{exported.parent}" model_platform: "tensorflow" }}
      config {{ name: "half_plus_three" base_path: "{tmp_path / 'three'}" model_platform: "tensorflow" }} }}""")
    with ModelServer(configs, ServerConfig(rest_port=None, grpc_port=0, poll_seconds=0, grace_seconds=5)) as srv:
        target = f"127.0.0.1:{srv.grpc_port}"
        for name, version in (("half_plus_two", 1), ("half_plus_three", 3)):
            verify_predict_request(target, tiny_model, model_name=name, expected_version=version)
            verify_predict_request(target, tiny_model, model_name=name, specify_output=False, expected_version=version)


def test_BadModelConfig(tmp_path, capsys):  # tensorflow_model_server_test.py:300
    bad = tmp_path / "bad_model_config.txt"
    bad.write_text("improperly formatted file\n")  # testdata/bad_model_config.txt
    assert main(["serve", f"--model_config_file={bad}", "--port=0", "--rest_api_port=0", "--no-ui"]) != 0
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig" in capsys.readouterr().err


@pytest.mark.parametrize("poll_seconds", [1, 0])
def test_ModelConfigReload(exported, tmp_path, tiny_model, poll_seconds):
    # tensorflow_model_server_test.py:315 testModelConfigReload (poll 1 s: the new config is served)
    # and :370 testModelConfigReloadWithZeroPollPeriod (0: read once, the old one is still served)
    from sr_tf.serving.models import parse_model_config_file
    from sr_tf.serving.server import ModelServer, ServerConfig

    copy_version(exported, tmp_path / "three", 3)
    template = 'model_config_list: {{ config: {{ name: "{name}", base_path: "{path}", model_platform: "tensorflow" }} }}'
    config_path = tmp_path / "model_config.txt"
    config_path.write_text(template.format(name="half_plus_two", path=exported.parent))
    config = ServerConfig(rest_port=None, grpc_port=0, poll_seconds=0, grace_seconds=5,
                          model_config_file=str(config_path), model_config_poll_seconds=poll_seconds)
    with ModelServer(parse_model_config_file(config_path), config) as srv:
        srv._watch_config_file()  # what serve_forever starts (sr-tf serve)
        target = f"127.0.0.1:{srv.grpc_port}"
        verify_predict_request(target, tiny_model, model_name="half_plus_two", specify_output=False)
        time.sleep(0.05)
        config_path.write_text(template.format(name="half_plus_three", path=tmp_path / "three"))
        deadline = time.monotonic() + (10 if poll_seconds else poll_seconds + 1)
        while time.monotonic() < deadline and not _serves(srv.manager, "half_plus_three"):
            time.sleep(0.2)
        if poll_seconds:
            verify_predict_request(target, tiny_model, model_name="half_plus_three", specify_output=False,
                                   expected_version=3)
        else:
            verify_predict_request(target, tiny_model, model_name="half_plus_two", specify_output=False)


def _serves(manager, name: str) -> bool:
    from sr_tf.serving.errors import ServingError

    try:
        return manager.resolve(name) is not None
    except ServingError:
        return False


# --- REST (tensorflow_model_server_test.py:439-602), against the conftest server --------------
@pytest.mark.parametrize("what", ["classify", "regress"])
def test_ClassifyREST_and_RegressREST(rest_url, what):  # :439, :459
    r = requests.post(f"{rest_url}/v1/models/tiny:{what}", data=json.dumps({"examples": [{"x": 2.0}]}), timeout=TIMEOUT)
    kind = "classification" if what == "classify" else "regression"
    assert r.status_code == 400 and r.json()["error"].startswith(f"No {kind} inputs found in SignatureDef")


@pytest.mark.parametrize("key,out", [("instances", "predictions"), ("inputs", "outputs")])
def test_PredictREST_and_PredictColumnarREST(rest_url, tiny_model, key, out):  # :479, :500
    x = random_pixels(8, (1, 2, 3, 3))
    r = requests.post(f"{rest_url}/v1/models/tiny:predict", data=json.dumps({key: x.tolist()}), timeout=TIMEOUT)
    assert r.status_code == 200
    assert_upscaled_equal(np.array(r.json()[out]), reference_upscale(tiny_model, x))
    assert b".0" in r.content  # floats are written as decimals, e.g. 2.0 (json_tensor.cc:151)


def test_GetStatusREST(rest_url):  # :521
    r = requests.get(f"{rest_url}/v1/models/tiny", timeout=TIMEOUT)
    assert r.json() == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}


def test_GetModelMetadataREST(rest_url, grpc_target):  # :550 (against the same server's gRPC answer)
    from google.protobuf import json_format

    r = requests.get(f"{rest_url}/v1/models/tiny/metadata", timeout=TIMEOUT).json()
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "tiny"
    grpc_answer = _stub(grpc_target).GetModelMetadata(request, TIMEOUT)
    sigs = get_model_metadata_pb2.SignatureDefMap()
    grpc_answer.metadata["signature_def"].Unpack(sigs)
    want = json_format.MessageToDict(sigs, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    assert r == {"model_spec": {"name": "tiny", "signature_name": "", "version": "1"},
                 "metadata": {"signature_def": want}}


def test_PrometheusEndpoint(rest_url):  # :582 (http_server.cc:96 Content-Type)
    r = requests.get(f"{rest_url}/monitoring/prometheus/metrics", timeout=TIMEOUT)
    assert r.status_code == 200 and "# TYPE" in r.text and r.headers["Content-Type"] == "text/plain"


# --- SavedModels written by tf.saved_model.save (:636-703), gRPC channel args (:425), UDS (:604)
@pytest.fixture(scope="module")
def saved_models_server(tmp_path_factory):
    from sr_tf.serving.models import ModelConfig
    from sr_tf.serving.server import ModelServer, ServerConfig

    base = tmp_path_factory.mktemp("saved")
    root = tf.train.Checkpoint()  # test_tf_saved_model_save
    root.v1, root.v2 = tf.Variable(3.0), tf.Variable(2.0)
    root.f = tf.function(lambda x: {"y": root.v1 * root.v2 * x})
    tf.saved_model.save(root, str(base / "default" / "00000123"), root.f.get_concrete_function(tf.TensorSpec(None, tf.float32)))
    multi = tf.train.Checkpoint()  # test_tf_saved_model_save_multiple_signatures
    multi.f = tf.function(lambda x: {"y": 1.0}, input_signature=[tf.TensorSpec(None, tf.float32)])
    multi.g = tf.function(lambda x: {"y": 2.0}, input_signature=[tf.TensorSpec(None, tf.float32)])
    tf.saved_model.save(multi, str(base / "multi" / "00000123"),
                        signatures={"serving_default": multi.f, "custom_signature_key": multi.g})
    socket_path = str(base / "grpc.sock")
    config = ServerConfig(rest_port=None, grpc_port=0, poll_seconds=0, grace_seconds=5, grpc_socket_path=socket_path,
                          grpc_options=(("grpc.max_connection_age_ms", 2000), ("grpc.lb_policy_name", "grpclb")))
    models = [ModelConfig("default", str(base / "default")), ModelConfig("multi", str(base / "multi"))]
    with ModelServer(models, config) as srv:
        yield f"127.0.0.1:{srv.grpc_port}", f"unix:{socket_path}"


def verify_half_plus_two_request(target, expected_output, model_name="default", specify_output=True,
                                 signature_name="serving_default", batch_input=False):
    """The base's VerifyPredictRequest exactly (x = [2.0], output y in float_val)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    request.inputs["x"].dtype = types_pb2.DT_FLOAT
    request.inputs["x"].float_val.append(2.0)
    request.inputs["x"].tensor_shape.dim.add().size = 1
    if batch_input:
        request.inputs["x"].tensor_shape.dim.add().size = 1
    if specify_output:
        request.output_filter.append("y")
    result = _stub(target).Predict(request, TIMEOUT)
    assert "y" in result.outputs and result.outputs["y"].dtype == types_pb2.DT_FLOAT
    assert len(result.outputs["y"].float_val) == 1 and result.outputs["y"].float_val[0] == expected_output
    assert (result.model_spec.name, result.model_spec.signature_name, result.model_spec.version.value) == (
        model_name, signature_name, 123)


def test_tf_saved_model_save(saved_models_server):  # tensorflow_model_server_test.py:636
    verify_half_plus_two_request(saved_models_server[0], 12.0, specify_output=False)


def test_tf_saved_model_save_multiple_signatures(saved_models_server):  # :655
    verify_half_plus_two_request(saved_models_server[0], 2.0, model_name="multi", signature_name="custom_signature_key")
    verify_half_plus_two_request(saved_models_server[0], 1.0, model_name="multi")


def test_GoodGrpcChannelArgs(saved_models_server):  # :425 (grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb)
    verify_half_plus_two_request(saved_models_server[0], 12.0, specify_output=False)


def test_PredictUDS(saved_models_server):  # :604 (--grpc_socket_path)
    verify_half_plus_two_request(saved_models_server[1], 12.0, specify_output=False)


def test_serialization_as_tensor_content_is_opt_in(exported, tiny_model):
    # server.cc:327 --enable_serialization_as_tensor_content: kAsProtoContent instead of the fields
    from sr_tf.serving.models import ModelConfig
    from sr_tf.serving.server import ModelServer, ServerConfig

    config = ServerConfig(rest_port=None, grpc_port=0, poll_seconds=0, grace_seconds=5, tensor_content=True)
    with ModelServer([ModelConfig("tiny", str(exported.parent))], config) as srv:
        x = random_pixels(3, (1, 2, 2, 3))
        request = predict_pb2.PredictRequest(inputs={"images": tf.make_tensor_proto(x)})
        request.model_spec.name = "tiny"
        out = _stub(f"127.0.0.1:{srv.grpc_port}").Predict(request, TIMEOUT).outputs["upscaled"]
        assert not out.float_val and len(out.tensor_content) == 4 * 4 * 3 * 4
        assert_upscaled_equal(tf.make_ndarray(out), reference_upscale(tiny_model, x))
