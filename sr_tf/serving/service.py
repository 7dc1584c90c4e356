"""The protocol-independent core shared by the REST and gRPC front ends.

`PredictionCore` resolves a model spec to a servable and signature, checks inputs (names, dtypes,
pixel limits), queues the call on the batch scheduler and records Prometheus metrics.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import io
import time

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sr_tf.serving.batching import BatchingConfig, BatchScheduler, batch_key
from sr_tf.serving.errors import Code, ServingError, invalid
from sr_tf.serving.models import ModelManager, Servable, Signature


@dataclasses.dataclass(frozen=True)
class Limits:
    """Request limits. `max_pixels` counts input pixels (N*H*W of image tensors, or decoded sizes);
    a request still waiting after `timeout_seconds` is answered DEADLINE_EXCEEDED (HTTP 504)."""

    max_request_bytes: int = 32 * 1024 * 1024
    max_pixels: int = 4096 * 4096
    timeout_seconds: float = 300.0

    def deadline_error(self) -> ServingError:
        return ServingError(
            Code.DEADLINE_EXCEEDED,
            f"The request did not finish within {self.timeout_seconds:g} s (--request-timeout-seconds)",
        )


class Metrics:
    """Prometheus metrics of one server (own registry, so several servers can run in a process)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sr_tf_serving_requests", "Requests by model, API and status code.",
            ["model_name", "api", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "sr_tf_serving_request_latency_seconds", "End-to-end request latency.",
            ["model_name", "api"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.batch_size = Histogram(
            "sr_tf_serving_batch_size", "Examples per executed batch.", registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        )
        self.queue_depth = Gauge("sr_tf_serving_queue_depth", "Requests queued or running.", registry=self.registry)

    def observe(self, model: str, api: str, status: str, seconds: float) -> None:
        self.requests.labels(model, api, status).inc()
        self.latency.labels(model, api).observe(seconds)


def count_pixels(inputs: dict[str, np.ndarray]) -> int:
    """Input pixels: N*H*W of rank-4 numeric tensors; width*height of encoded images (from headers)."""
    from PIL import Image

    total = 0
    for arr in inputs.values():
        if arr.dtype == object:
            for item in arr.reshape(-1):
                try:
                    with Image.open(io.BytesIO(item)) as im:
                        total += im.width * im.height
                except Exception:  # undecodable data is the model's to reject
                    continue
        elif arr.ndim == 4:
            total += arr.shape[0] * arr.shape[1] * arr.shape[2]
    return total


class PredictionCore:
    """Resolves, validates and runs predict calls (thread-safe)."""

    def __init__(self, manager: ModelManager, batching: BatchingConfig | None = None,
                 limits: Limits | None = None, metrics: Metrics | None = None):
        self.manager = manager
        self.limits = limits or Limits()
        self.metrics = metrics or Metrics()
        self.scheduler = BatchScheduler(batching, on_batch=self.metrics.batch_size.observe)
        self.metrics.queue_depth.set_function(lambda: self.scheduler.pending)

    def resolve(self, name: str, version: int | None, label: str | None,
                signature_name: str) -> tuple[Servable, Signature]:
        servable = self.manager.resolve(name, version, label)
        return servable, servable.signature(signature_name)

    def check_inputs(self, signature: Signature, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Names and dtypes against the signature, and the pixel limit; returns the inputs cast where safe."""
        for key in inputs:
            if key not in signature.inputs:
                raise invalid(
                    f"input tensor alias not found in signature: {key}. "
                    f"Inputs expected to be in the set {{{','.join(sorted(signature.inputs))}}}."
                )
        missing = set(signature.inputs) - set(inputs)
        if missing:
            raise invalid(f"Missing input(s) {sorted(missing)} for signature {signature.name!r}")
        out = {}
        for key, arr in inputs.items():
            info = signature.inputs[key]
            if info.is_string != (arr.dtype == object) or (not info.is_string and arr.dtype != info.dtype):
                got = "string" if arr.dtype == object else arr.dtype.name
                raise invalid(f"Expects arg[{key}] to be {info.tf_name} but {got} is provided")
            out[key] = arr
        pixels = count_pixels(out)
        if pixels > self.limits.max_pixels:
            raise invalid(
                f"Request has {pixels} input pixels, more than the limit of {self.limits.max_pixels} "
                "(--max-pixels); split the batch or the image"
            )
        return out

    def submit(self, servable: Servable, signature: Signature,
               inputs: dict[str, np.ndarray]) -> concurrent.futures.Future:
        """Queues a checked request; the future gives its outputs."""
        key = batch_key(servable, signature.name, inputs)
        return self.scheduler.submit(key, lambda x: servable.run(signature, x), inputs)

    def predict(self, name: str, version: int | None, label: str | None, signature_name: str,
                inputs: dict[str, np.ndarray], api: str = "grpc") -> tuple[Servable, Signature, dict]:
        """Blocking predict (used by gRPC); records metrics."""
        start, status = time.perf_counter(), "OK"
        try:
            servable, signature = self.resolve(name, version, label, signature_name)
            checked = self.check_inputs(signature, inputs)
            try:
                outputs = self.submit(servable, signature, checked).result(self.limits.timeout_seconds)
            except concurrent.futures.TimeoutError:
                raise self.limits.deadline_error() from None
            return servable, signature, outputs
        except ServingError as err:
            status = err.code.name
            raise
        except Exception as err:
            status = Code.INTERNAL.name
            raise ServingError(Code.INTERNAL, str(err)) from err
        finally:
            self.metrics.observe(name, api, status, time.perf_counter() - start)

    def close(self, timeout: float = 30.0) -> None:
        self.scheduler.close(timeout)


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
