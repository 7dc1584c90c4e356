"""TF Serving's gRPC API (`PredictionService`, `ModelService`) on grpcio with the official protos.

Predict, GetModelMetadata, GetModelStatus and HandleReloadConfigRequest serve; Classify, Regress
and MultiInference check their request as TF Serving does and answer what it answers for a model
without classification / regression signatures (INVALID_ARGUMENT naming what is missing).
Predict responses list values in the typed fields (`float_val`, ...) as TF Serving does by
default; `tensor_content=True` (`--enable_serialization_as_tensor_content`) packs them as bytes.
"""

from __future__ import annotations

import concurrent.futures

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from sr_tf.serving.errors import Code, ServingError, invalid
from sr_tf.serving.model_config import ModelConfig
from sr_tf.serving.servable import DEFAULT_SIGNATURE, Signature
from sr_tf.serving.service import (
    CLASSIFY_METHOD,
    REGRESS_METHOD,
    Limits,
    PredictionCore,
    check_classify_regress,
    check_input_names,
    check_multi_inference,
    pixel_limit_error,
    shape_pixels,
    signature_def_map,
    status_response,
)

# TF Serving accepts messages up to 2 GiB; grpcio's limit is a signed 32-bit int. Requests are
# held to `Limits.max_request_bytes` instead (grpcio refuses larger ones before reading them).
MAX_MESSAGE_BYTES = 2**31 - 1
GRPC_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]
# The repeated value fields of a TensorProto; a tensor lists its values in one of them.
_VALUE_FIELDS = ("half_val", "float_val", "double_val", "int_val", "string_val", "scomplex_val",
                 "int64_val", "bool_val", "dcomplex_val", "resource_handle_val", "variant_val",
                 "uint32_val", "uint64_val", "float8_val")


def decode_tensor_protos(protos, signature: Signature, limits: Limits) -> dict:
    """Checks each `TensorProto`'s dtype, shape and value count against the signature and the
    limits, then converts it to numpy. The checks come first, so a few bytes claiming a huge
    shape are refused without building the tensor.

    Raises:
      ServingError: INVALID_ARGUMENT naming the input and the problem.
    """
    check_input_names(signature, protos.keys())
    out, pixels = {}, 0
    for key, proto in protos.items():
        info = signature.inputs.get(key)
        if info is None:
            raise invalid(
                f"input tensor alias not found in signature: {key}. "
                f"Inputs expected to be in the set {{{','.join(sorted(signature.inputs))}}}."
            )
        try:
            dtype = tf.dtypes.as_dtype(proto.dtype)
        except TypeError:
            raise invalid(f"Input '{key}' has an unknown dtype enum value {proto.dtype}") from None
        want_string = info.is_string
        if (dtype == tf.string) != want_string or (not want_string and dtype.as_numpy_dtype != info.dtype):
            raise invalid(f"Expects arg[{key}] to be {info.tf_name} but {dtype.name} is provided")
        if proto.tensor_shape.unknown_rank:
            raise invalid(f"Input '{key}' has an unknown rank; send a fully defined shape")
        shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
        if any(d < 0 for d in shape):
            raise invalid(f"Input '{key}' has a negative dimension in its shape {list(shape)}")
        count = 1
        for d in shape:
            count *= d
        if not want_string:
            pixels += shape_pixels(shape)
            if pixels > limits.max_pixels:
                raise pixel_limit_error(pixels, limits.max_pixels)
            if count > 4 * limits.max_pixels:
                raise invalid(f"Input '{key}' has {count} values, more than this server accepts "
                              f"({4 * limits.max_pixels}; --max-pixels)")
        if proto.tensor_content:
            itemsize = np.dtype(dtype.as_numpy_dtype).itemsize
            if want_string or len(proto.tensor_content) != count * itemsize:
                raise invalid(f"Input '{key}': tensor_content holds {len(proto.tensor_content)} bytes; "
                              f"shape {list(shape)} of {dtype.name} needs {count * itemsize}")
        else:
            n = sum(len(getattr(proto, f)) for f in _VALUE_FIELDS if hasattr(proto, f))
            # TensorFlow fills a tensor from a single value (or none: zeros); anything else must match
            if n not in (0, 1, count) or (want_string and n != count):
                raise invalid(f"Input '{key}' lists {n} values for shape {list(shape)} ({count} elements)")
        try:
            out[key] = tf.make_ndarray(proto)
        except Exception as err:
            raise invalid(f"Invalid tensor proto for input '{key}': {err}") from None
    return out


# TensorProto's typed value field per dtype, as tensorflow::Tensor::AsProtoField fills it
_FIELDS = {
    np.dtype(np.float32): "float_val", np.dtype(np.float64): "double_val", np.dtype(np.int32): "int_val",
    np.dtype(np.int16): "int_val", np.dtype(np.int8): "int_val", np.dtype(np.uint8): "int_val",
    np.dtype(np.uint16): "int_val", np.dtype(np.int64): "int64_val", np.dtype(np.bool_): "bool_val",
    np.dtype(np.uint32): "uint32_val", np.dtype(np.uint64): "uint64_val",
}


# float_val / double_val are packed fixed-width fields: (field number, little-endian dtype)
_PACKED_FIXED = {np.dtype(np.float32): (5, "<f4"), np.dtype(np.float64): (6, "<f8")}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if not n:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def tensor_proto(arr: np.ndarray, tensor_content: bool = False):
    """A numpy output as TF Serving puts it in a PredictResponse: every value in its typed field
    (`float_val`, `int_val`, `string_val`, ...; `Tensor::AsProtoField`, the default), or packed in
    `tensor_content` (`Tensor::AsProtoTensorContent`, `--enable_serialization_as_tensor_content`)."""
    arr = np.asarray(arr)
    if tensor_content and arr.dtype != object:
        return tf.make_tensor_proto(arr)
    proto = tf.make_tensor_proto(np.zeros((0,), arr.dtype) if arr.dtype != object else np.zeros((0,), object))
    proto.ClearField("tensor_shape")
    proto.ClearField("tensor_content")
    proto.tensor_shape.SetInParent()  # present even for a scalar, as AsProtoField writes it
    for d in arr.shape:
        proto.tensor_shape.dim.add(size=int(d))
    flat = arr.reshape(-1)
    if arr.dtype in _PACKED_FIXED and flat.size:
        # the packed field's wire bytes are the values' bytes: parsing them is ~10x faster than
        # appending 3 million floats one by one (the result is the same message)
        number, little = _PACKED_FIXED[arr.dtype]
        raw = np.ascontiguousarray(flat, little).tobytes()
        return type(proto).FromString(proto.SerializeToString() + _varint(number << 3 | 2) + _varint(len(raw)) + raw)
    if arr.dtype == object:
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in flat.tolist())
    elif arr.dtype == np.float16:
        proto.half_val.extend(flat.view(np.uint16).tolist())
    elif arr.dtype in _FIELDS:
        getattr(proto, _FIELDS[arr.dtype]).extend(flat.tolist())
    else:
        return tf.make_tensor_proto(arr)
    return proto


def _spec(request) -> tuple[str, int | None, str | None]:
    """(name, version, label) of a request's model_spec; INVALID_ARGUMENT "Missing ModelSpec"
    when it has none (predict_impl.cc, classification_service.cc, get_model_status_impl.cc)."""
    if not request.HasField("model_spec"):
        raise invalid("Missing ModelSpec")
    spec = request.model_spec
    version = spec.version.value if spec.HasField("version") else None
    return spec.name, version, spec.version_label or None


def _abort(context: grpc.ServicerContext, err: ServingError):
    code = err.code.grpc_code
    context.abort(code, err.message)


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core: PredictionCore, tensor_content: bool = False):
        self.core = core
        self.tensor_content = tensor_content

    def Predict(self, request, context):
        try:
            name, version, label = _spec(request)

            def decode(sig):
                # predict_util.cc PreProcessPrediction: the inputs, then the output filter
                check_input_names(sig, request.inputs.keys())
                seen: set[str] = set()
                for key in request.output_filter:
                    if key not in sig.outputs:
                        raise invalid(f"output tensor alias not found in signature: {key} Outputs expected to "
                                      f"be in the set {{{','.join(sorted(sig.outputs))}}}.")
                    if key in seen:
                        raise invalid(f"duplicate output tensor alias: {key}")
                    seen.add(key)
                return decode_tensor_protos(request.inputs, sig, self.core.limits)

            servable, signature, outputs = self.core.predict(
                name, version, label, request.model_spec.signature_name, decode,
                api="grpc_predict", timeout=context.time_remaining(),
                # a client that cancels or passes its deadline: its queued work is dropped
                on_submit=lambda future: context.add_callback(future.cancel),
            )
            wanted = list(request.output_filter) or list(outputs)
            response = predict_pb2.PredictResponse()
            response.model_spec.name = name
            response.model_spec.version.value = servable.version
            response.model_spec.signature_name = signature.name or DEFAULT_SIGNATURE
            for key in wanted:
                response.outputs[key].CopyFrom(tensor_proto(outputs[key], self.tensor_content))
            return response
        except ServingError as err:
            _abort(context, err)

    def Classify(self, request, context):
        self._classify_regress(request, context, CLASSIFY_METHOD)
        return classification_pb2.ClassificationResponse()

    def Regress(self, request, context):
        self._classify_regress(request, context, REGRESS_METHOD)
        return regression_pb2.RegressionResponse()

    def _classify_regress(self, request, context, method: str) -> None:
        try:
            name, version, label = _spec(request)
            servable = self.core.manager.resolve(name, version, label)
            check_classify_regress(servable, request.model_spec.signature_name, method)
        except ServingError as err:
            _abort(context, err)

    def MultiInference(self, request, context):
        try:
            check_multi_inference(self.core.manager, request)
        except ServingError as err:
            _abort(context, err)

    def GetModelMetadata(self, request, context):
        try:
            name, version, label = _spec(request)
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
        try:
            name, version, label = _spec(request)
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


def create_grpc_server(core: PredictionCore, address: str, max_workers: int = 16,
                       options: list[tuple[str, object]] | None = None,
                       tensor_content: bool = False,
                       credentials: grpc.ServerCredentials | None = None) -> tuple[grpc.Server, int]:
    """A bound, not yet started gRPC server on `address` ("host:port"); returns it and its port.
    With `credentials` (`sr_tf.serving.tls.grpc_server_credentials`) the port speaks TLS only.

    `tensor_content`: Predict responses pack values in `tensor_content` (TF Serving's
    `--enable_serialization_as_tensor_content`) instead of the typed fields.

    The port is bound exclusively: grpcio would otherwise set SO_REUSEPORT and silently share a
    port that another server already listens on.

    Raises:
      OSError: the port is in use or cannot be bound.
    """
    opts = dict(GRPC_OPTIONS)
    opts["grpc.max_receive_message_length"] = core.limits.max_request_bytes
    opts.update(options or [])
    opts["grpc.so_reuseport"] = 0
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=max_workers), options=list(opts.items()))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionServicer(core, tensor_content), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelServicer(core), server)
    try:
        port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    except RuntimeError:  # grpcio >= 1.5x raises instead of returning 0
        port = 0
    if port == 0:
        # Stopped now, not at interpreter exit: a never-started server collected then has aborted the
        # process (grpc's poller: "epoll_wait error: Bad file descriptor", SIGABRT) instead of exit 2.
        server.stop(None)
        raise OSError(f"gRPC port {address} is already in use or cannot be bound")
    return server, port
