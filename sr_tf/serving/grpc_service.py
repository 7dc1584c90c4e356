"""TF Serving's gRPC API (`PredictionService`, `ModelService`) on grpcio with the official protos.

Implemented: Predict, GetModelMetadata, GetModelStatus, HandleReloadConfigRequest. Classify,
Regress and MultiInference answer UNIMPLEMENTED (the generated base class does that).
"""

from __future__ import annotations

import concurrent.futures

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from sr_tf.serving.errors import Code, ServingError
from sr_tf.serving.models import DEFAULT_SIGNATURE, ModelConfig
from sr_tf.serving.service import PredictionCore, signature_def_map, status_response

# TF Serving accepts messages up to 2 GiB; grpcio's limit is a signed 32-bit int.
MAX_MESSAGE_BYTES = 2**31 - 1
GRPC_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]


def _spec(spec) -> tuple[str, int | None, str | None]:
    version = spec.version.value if spec.HasField("version") else None
    return spec.name, version, spec.version_label or None


def _abort(context: grpc.ServicerContext, err: ServingError):
    code = err.code.grpc_code
    context.abort(code, err.message)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core: PredictionCore):
        self.core = core

    def Predict(self, request, context):
        name, version, label = _spec(request.model_spec)
        try:
            try:
                inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            except Exception as err:
                raise ServingError(Code.INVALID_ARGUMENT, f"Invalid tensor proto in request: {err}") from None
            servable, signature, outputs = self.core.predict(
                name, version, label, request.model_spec.signature_name, inputs, api="grpc_predict"
            )
            wanted = list(request.output_filter) or list(outputs)
            for key in wanted:
                if key not in outputs:
                    raise ServingError(Code.INVALID_ARGUMENT, f"output tensor alias not found in signature: {key}")
            response = predict_pb2.PredictResponse()
            response.model_spec.name = name
            response.model_spec.version.value = servable.version
            response.model_spec.signature_name = signature.name or DEFAULT_SIGNATURE
            for key in wanted:
                response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key]))
            return response
        except ServingError as err:
            _abort(context, err)

    def GetModelMetadata(self, request, context):
        name, version, label = _spec(request.model_spec)
        try:
            for field in request.metadata_field:
                if field != "signature_def":
                    raise ServingError(Code.INVALID_ARGUMENT, f"Metadata field {field} is not supported")
            if not request.metadata_field:
                raise ServingError(Code.INVALID_ARGUMENT, "GetModelMetadataRequest must specify at least one metadata_field")
            servable = self.core.manager.resolve(name, version, label)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = name
            response.model_spec.version.value = servable.version
            response.metadata["signature_def"].Pack(signature_def_map(servable))
            return response
        except ServingError as err:
            _abort(context, err)


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core: PredictionCore):
        self.core = core

    def GetModelStatus(self, request, context):
        name, version, label = _spec(request.model_spec)
        try:
            return status_response(self.core.manager, name, version, label)
        except ServingError as err:
            _abort(context, err)

    def HandleReloadConfigRequest(self, request, context):
        response = model_management_pb2.ReloadConfigResponse()
        try:
            configs = []
            for m in request.config.model_config_list.config:
                which = m.model_version_policy.WhichOneof("policy_choice") or "latest"
                configs.append(ModelConfig(
                    name=m.name, base_path=m.base_path, version_policy=which,
                    num_latest=(m.model_version_policy.latest.num_versions or 1) if which == "latest" else 1,
                    versions=tuple(m.model_version_policy.specific.versions) if which == "specific" else (),
                    labels=dict(m.version_labels),
                ))
            self.core.manager.reload_config(configs)
            response.status.error_code = 0
        except ValueError as err:
            response.status.error_code = 3  # INVALID_ARGUMENT
            response.status.error_message = str(err)
        return response


def create_grpc_server(core: PredictionCore, address: str, max_workers: int = 16) -> tuple[grpc.Server, int]:
    """A started-but-not-running gRPC server bound to `address` ("host:port"); returns it and its port."""
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=max_workers), options=GRPC_OPTIONS)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(core), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(core), server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"Could not bind the gRPC port: {address}")
    return server, port
