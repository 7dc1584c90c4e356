"""The protocol-independent core shared by the REST and gRPC front ends.

`PredictionCore` resolves a model spec to a servable and signature, checks inputs (names, dtypes,
finite values, pixel limits), queues the call on the batch scheduler and records Prometheus
metrics. Limits are checked from shapes and image headers, before anything is decoded or run.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable

import numpy as np

from sr_tf.serving.batching import BatchingConfig, BatchScheduler, batch_key
from sr_tf.serving.errors import Code, ServingError, invalid
from sr_tf.serving.limits import Limits  # noqa: F401  (re-exported: the servers' import)
from sr_tf.serving.metrics import Metrics
from sr_tf.serving.models import ModelManager
from sr_tf.serving.servable import Servable, Signature

# Formats the `encoded_image` signature decodes (tf.io.decode_image); Pillow names MPO JPEGs apart.
GRAPH_IMAGE_FORMATS = {"PNG", "JPEG", "MPO", "GIF", "BMP", "WEBP"}


def shape_pixels(shape: tuple[int, ...]) -> int:
    """Pixels of a numeric image tensor from its shape alone: N*H*W for rank 4 `[N, H, W, C]`,
    H*W for rank 3; other ranks hold no image (0)."""
    if len(shape) == 4:
        return int(shape[0]) * int(shape[1]) * int(shape[2])
    if len(shape) == 3:
        return int(shape[0]) * int(shape[1])
    return 0


def encoded_pixels(key: str, values: np.ndarray) -> int:
    """Sum of width*height of the encoded images in a string tensor, read from their headers.

    Raises:
      ServingError: INVALID_ARGUMENT naming the element and why it cannot be an input image
        (not an image, a corrupt header, a format the graph cannot decode).
    """
    from sr_tf.imageio import ImageError, read_header

    total = 0
    for i, item in enumerate(values.reshape(-1)):
        name = f"{key}[{i}]"
        try:
            header = read_header(bytes(item), name, max_pixels=None)
            width, height, fmt = header.width, header.height, header.format
        except ImageError as err:
            raise invalid(f"Invalid image in input {err}") from None
        if fmt not in GRAPH_IMAGE_FORMATS:
            raise invalid(f"Invalid image in input {name}: {fmt} images are not supported; "
                          "send PNG, JPEG, GIF, BMP or WebP")
        total += width * height
    return total


def pixel_limit_error(pixels: int, limit: int) -> ServingError:
    return invalid(
        f"Request has {pixels} input pixels, more than the limit of {limit} "
        "(--max-pixels); split the batch or the image"
    )


def check_input_names(signature: Signature, names) -> None:
    """The request's input names against the signature's, with TF Serving's texts
    (predict_util.cc `VerifyRequestInputsSize`, then TensorFlow's `GetInputValues`).

    Raises:
      ServingError: INVALID_ARGUMENT.
    """
    sent, wanted = sorted(names), sorted(signature.inputs)
    optional = set(getattr(signature, "defaults", None) or ())
    extra = sorted(set(sent) - set(wanted))
    missing = sorted(set(wanted) - set(sent) - optional)
    if len(sent) != len(wanted) and (extra or missing):  # fewer is fine when the rest have defaults
        raise invalid(
            f"input size does not match signature: {len(sent)}!={len(wanted)} len({{{','.join(sent)}}}) != "
            f"len({{{','.join(wanted)}}}). Sent extra: {{{','.join(extra)}}}. "
            f"Missing but required: {{{','.join(missing)}}}."
        )
    for key in sent:
        if key not in signature.inputs:
            raise invalid(
                f"input tensor alias not found in signature: {key}. "
                f"Inputs expected to be in the set {{{','.join(wanted)}}}."
            )


class PredictionCore:
    """Resolves, validates and runs predict calls (thread-safe)."""

    def __init__(self, manager: ModelManager, batching: BatchingConfig | None = None,
                 limits: Limits | None = None, metrics: Metrics | None = None):
        self.manager = manager
        self.limits = limits or Limits()
        self.metrics = metrics or Metrics()
        self.scheduler = BatchScheduler(batching, on_batch=self.metrics.batch_size.observe)
        self.metrics.queue_depth.set_function(lambda: self.scheduler.pending)
        self.request_log = None  # a sr_tf.serving.request_log.RequestLogger, set by the server

    def resolve(self, name: str, version: int | None, label: str | None,
                signature_name: str, grpc: bool = False) -> tuple[Servable, Signature]:
        servable = self.manager.resolve(name, version, label)
        return servable, servable.signature(signature_name, grpc)

    def check_inputs(self, signature: Signature, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Names, dtypes and finite values against the signature, and the pixel limit (shapes and
        image headers: nothing is decoded). Raises INVALID_ARGUMENT naming the cause; the count
        and names are checked as predict_util.cc `VerifyRequestInputsSize` and TensorFlow's
        `GetInputValues` do, with their texts (inputs with a signature default may be left out)."""
        check_input_names(signature, inputs)
        out = {}
        for key, arr in inputs.items():
            info = signature.inputs[key]
            if info.is_string != (arr.dtype == object) or (not info.is_string and arr.dtype != info.dtype):
                got = "string" if arr.dtype == object else arr.dtype.name
                raise invalid(f"Expects arg[{key}] to be {info.tf_name} but {got} is provided")
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                bad = np.argwhere(~np.isfinite(arr))[0].tolist()
                raise invalid(
                    f"Input '{key}' holds NaN or Infinity (first at index {bad}); "
                    "pixel values must be finite numbers"
                )
            out[key] = arr
        pixels = self.count_pixels(out)
        if pixels > self.limits.max_pixels:
            raise pixel_limit_error(pixels, self.limits.max_pixels)
        return out

    @staticmethod
    def count_pixels(inputs: dict[str, np.ndarray]) -> int:
        """Input pixels of a request: from shapes, and from the headers of encoded images."""
        return sum(encoded_pixels(k, v) if v.dtype == object else shape_pixels(v.shape)
                   for k, v in inputs.items())

    def submit(self, servable: Servable, signature: Signature,
               inputs: dict[str, np.ndarray]) -> concurrent.futures.Future:
        """Queues a checked request; the future gives its outputs (cancel it to drop the request)."""
        key = batch_key(servable, signature.name, inputs)

        def run(x):
            start = time.perf_counter()
            try:
                return servable.run(signature, x)
            finally:
                self.metrics.observe_runtime(servable.name, time.perf_counter() - start)

        future = self.scheduler.submit(key, run, inputs, cost=self.count_pixels(inputs),
                                       options=servable.batching)
        if self.request_log is not None:
            self.request_log.maybe_log(servable, signature.name, inputs, future)
        return future

    def predict(self, name: str, version: int | None, label: str | None, signature_name: str,
                decode: Callable[[Signature], dict[str, np.ndarray]], api: str = "grpc_predict",
                timeout: float | None = None,
                on_submit: Callable[[concurrent.futures.Future], None] | None = None,
                ) -> tuple[Servable, Signature, dict]:
        """Blocking predict (used by gRPC); records metrics.

        Args:
          decode: turns the request's tensors into numpy inputs once the signature is known (so
            shapes and dtypes can be checked against it before anything is converted).
          timeout: seconds to wait (at most `limits.timeout_seconds`), e.g. the client's deadline.
          on_submit: called with the queued request's future (e.g. to cancel it when the client
            goes away).
        """
        start, status = time.perf_counter(), "OK"
        try:
            servable, signature = self.resolve(name, version, label, signature_name, grpc=True)
            checked = self.check_inputs(signature, decode(signature))
            future = self.submit(servable, signature, checked)
            if on_submit is not None:
                on_submit(future)
            wait = self.limits.timeout_seconds if timeout is None else min(timeout, self.limits.timeout_seconds)
            try:
                outputs = future.result(max(wait, 0.0))
            except concurrent.futures.TimeoutError:
                future.cancel()
                raise self.limits.deadline_error() from None
            except concurrent.futures.CancelledError:
                raise ServingError(Code.CANCELLED, "The request was cancelled") from None
            return servable, signature, outputs
        except ServingError as err:
            status = err.code.name
            raise
        except Exception as err:
            status = Code.INTERNAL.name
            raise ServingError(Code.INTERNAL, str(err)) from err
        finally:
            self.metrics.observe(name, api, status, time.perf_counter() - start)

    def close(self, timeout: float = 30.0) -> bool:
        """Stops the batch workers; False when a model call still ran after `timeout` seconds."""
        return self.scheduler.close(timeout)


def status_response(manager: ModelManager, name: str, version: int | None = None, label: str | None = None):
    """A `GetModelStatusResponse` proto for a model (all its versions, or the one named)."""
    from tensorflow_serving.apis import get_model_status_pb2

    response = get_model_status_pb2.GetModelStatusResponse()
    states = get_model_status_pb2.ModelVersionStatus.State
    for v, state in manager.status(name, version, label):
        entry = response.model_version_status.add(version=v, state=states.Value(state.state))
        entry.status.error_code = _error_code(state.error_code)
        entry.status.error_message = state.error_message
    return response


def _error_code(name: str) -> int:
    from tensorflow_serving.apis import get_model_status_pb2

    status = get_model_status_pb2.ModelVersionStatus.DESCRIPTOR.fields_by_name["status"].message_type
    return status.fields_by_name["error_code"].enum_type.values_by_name[name].number


def signature_def_map(servable: Servable):
    """The servable's `SignatureDefMap` (as read from its saved_model.pb), for GetModelMetadata."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    result = get_model_metadata_pb2.SignatureDefMap()
    for key, sd in servable.signature_defs.items():
        result.signature_def[key].CopyFrom(sd)
    return result


CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"


def _check_inference_signature(signature_def, method: str) -> None:
    """classifier.cc `PreProcessClassification` / regressor.cc `PreProcessRegression` with TF
    Serving's default `--enable_signature_method_name_check=false`."""
    from google.protobuf import text_format

    def text() -> str:
        return text_format.MessageToString(signature_def)

    if len(signature_def.inputs) != 1:
        raise invalid("Expected one input Tensor.")
    if method == CLASSIFY_METHOD:
        if len(signature_def.outputs) not in (1, 2):
            raise invalid(f"Expected one or two output Tensors, found {len(signature_def.outputs)}")
        if "inputs" not in signature_def.inputs:
            raise invalid(f"No classification inputs found in SignatureDef: {text()}")
        if "classes" not in signature_def.outputs and "scores" not in signature_def.outputs:
            raise invalid('Expected classification signature outputs to contain at least one of "classes" or '
                          f'"scores". Signature was: {text()}')
    else:
        if len(signature_def.outputs) != 1:
            raise invalid("Expected one output Tensor.")
        if "inputs" not in signature_def.inputs:
            raise invalid(f"No regression inputs found in SignatureDef: {text()}")
        if "outputs" not in signature_def.outputs:
            raise invalid(f"No regression outputs found in SignatureDef: {text()}")


def _not_run(what: str) -> ServingError:
    return ServingError(Code.UNIMPLEMENTED, f"{what} signatures (serialized tf.Example inputs) are not run by "
                                            "sr-tf serve; use Predict")


def check_classify_regress(servable: Servable, signature_name: str, method: str) -> None:
    """Classify / Regress as TF Serving answers them (classifier.cc `GetClassificationSignatureDef`,
    regressor.cc `GetRegressionSignatureDef`): INVALID_ARGUMENT naming the missing signature,
    input or output, as for every model sr-tf exports. A model that has such a signature gets
    UNIMPLEMENTED (this server runs image signatures only).

    Args:
      method: `CLASSIFY_METHOD` or `REGRESS_METHOD`.
    """
    name = signature_name or "serving_default"
    signature_def = servable.signature_defs.get(name) if name in servable.signature_defs else None
    if signature_def is None:
        raise invalid(f"No signature was found with the name: {name}")
    _check_inference_signature(signature_def, method)
    raise _not_run("Classification" if method == CLASSIFY_METHOD else "Regression")


def check_multi_inference(manager: ModelManager, request) -> None:
    """MultiInference as TF Serving answers it (multi_inference_helper.cc, multi_inference.cc)."""
    spec = request.tasks[0].model_spec if request.tasks else None
    servable = manager.resolve(spec.name if spec else "",
                               spec.version.value if spec is not None and spec.HasField("version") else None,
                               spec.version_label or None if spec is not None else None)
    model_name, seen = "", set()
    for task in request.tasks:
        if not task.model_spec.name:
            raise invalid("Found ModelSpec with an empty model name.")
        if model_name and model_name != task.model_spec.name:
            raise invalid("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        model_name = task.model_spec.name
        name = task.model_spec.signature_name or "serving_default"
        if name in seen:
            raise invalid(f"Duplicate evaluation of signature: {name}")
        seen.add(name)
        if name not in servable.signature_defs:
            raise invalid(f"Requested signature not found in model graph: {name}")
        if task.method_name not in (CLASSIFY_METHOD, REGRESS_METHOD):
            raise ServingError(Code.UNIMPLEMENTED, f"Unsupported signature method_name: {task.method_name}")
        _check_inference_signature(servable.signature_defs[name], task.method_name)
    raise _not_run("Classification and regression")
