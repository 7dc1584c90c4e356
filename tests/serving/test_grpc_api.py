"""The gRPC API, called with TF Serving's own client idioms (stubs + tf.make_tensor_proto)."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_helpers import assert_upscaled_equal, image_bytes, random_pixels, reference_upscale
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from sr_tf.serving.clients import GrpcClient

OPTIONS = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]


@pytest.fixture()
def channel(grpc_target):
    ch = grpc.insecure_channel(grpc_target, options=OPTIONS)
    yield ch
    ch.close()


def _request(model="tiny", signature="serving_default", x=None):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if x is not None:
        request.inputs["images"].CopyFrom(tf.make_tensor_proto(x))
    return request


def test_predict_equals_the_keras_model(channel, tiny_model):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    x = random_pixels(10, (2, 7, 4, 3))
    response = stub.Predict(_request(x=x), 30)
    out = tf.make_ndarray(response.outputs["upscaled"])
    assert_upscaled_equal(out, reference_upscale(tiny_model, x))
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"


def test_large_message_over_the_default_4_mib(channel, tiny_model):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    x = random_pixels(11, (1, 300, 300, 3))  # 1.1 MB in, 4.3 MB out (> grpcio's 4 MiB default)
    out = tf.make_ndarray(stub.Predict(_request(x=x), 60).outputs["upscaled"])
    assert out.nbytes > 4 * 1024 * 1024
    assert_upscaled_equal(out, reference_upscale(tiny_model, x))


def test_metadata_and_status(channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "tiny"
    response = stub.GetModelMetadata(request, 10)
    sigs = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(sigs)
    assert sigs.signature_def["serving_default"].inputs["images"].dtype == tf.float32.as_datatype_enum
    assert sigs.signature_def["encoded_image"].outputs["upscaled_bytes"].dtype == tf.string.as_datatype_enum

    models = model_service_pb2_grpc.ModelServiceStub(channel)
    status = models.GetModelStatus(get_model_status_pb2.GetModelStatusRequest(
        model_spec={"name": "tiny"}), 10)
    (entry,) = status.model_version_status
    assert entry.version == 1
    assert entry.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE


@pytest.mark.parametrize("model,signature,code", [
    ("foo", "serving_default", grpc.StatusCode.NOT_FOUND),
    ("tiny", "nope", grpc.StatusCode.FAILED_PRECONDITION),
])
def test_error_codes(channel, model, signature, code):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(_request(model, signature, random_pixels(0)), 10)
    assert err.value.code() == code


def test_wrong_dtype_is_invalid_argument(channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.Predict(_request(x=random_pixels(0).astype(np.int32)), 10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "float" in err.value.details()


def test_classify_without_model_spec_is_tf_servings_error(channel):
    # classification_service.cc: a request without model_spec is INVALID_ARGUMENT "Missing ModelSpec"
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.Classify(classification_pb2.ClassificationRequest(), 10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "Missing ModelSpec"


def test_grpc_client_images_keep_alpha(grpc_target):
    client = GrpcClient(grpc_target, "tiny", version=1)
    rgba = np.random.default_rng(3).integers(0, 256, (4, 6, 4), dtype=np.uint8)
    from io import BytesIO

    from PIL import Image

    out = Image.open(BytesIO(client.upscale_image(image_bytes(rgba, mode="RGBA"))))
    assert out.mode == "RGBA" and out.size == (12, 8)
    x = random_pixels(12)
    np.testing.assert_array_equal(client.predict(x), GrpcClient(grpc_target, "tiny").predict(x))
    client.close()
