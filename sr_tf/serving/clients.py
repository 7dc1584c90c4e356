"""Clients for TF Serving's REST and gRPC APIs (work against real TF Serving and `sr-tf serve`).

Both offer `predict(inputs) -> outputs` on numpy arrays and `upscale_image(bytes) -> bytes` on
encoded images (through the exported `encoded_image` signature), plus status and metadata.
`upscale_images` is `send_images_request(images_request(...))`: the request can be measured
(`request_size`, bytes as sent) before it goes, as `sr_tf.serving.request_limits` does to keep
each request under a limit.
Importing this module imports no TensorFlow: the REST client needs only requests, NumPy and orjson;
the gRPC client imports `tensorflow_serving.apis` (and with it TensorFlow) when it is created.
"""

from __future__ import annotations

import base64
import os

import numpy as np
import orjson

from sr_tf.serving import codec
from sr_tf.signatures import (
    BYTES_INPUT,
    BYTES_OUTPUT,
    DEFAULT_SIGNATURE,
    ENCODED_SIGNATURE,
    NOISE_INPUT,
)


class ServingClientError(RuntimeError):
    """A request the server refused or failed: `status` is the HTTP status or gRPC code name."""

    def __init__(self, status, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def _model_path(model: str, version: int | None, label: str | None) -> str:
    if version is not None and label is not None:
        raise ValueError(f"Give a version or a label, not both. Received: version={version!r}, label={label!r}")
    path = f"/v1/models/{model}"
    if version is not None:
        path += f"/versions/{int(version)}"
    elif label is not None:
        path += f"/labels/{label}"
    return path


class RestClient:
    """TF Serving REST client (JSON, columnar format for arrays, `b64` for images).

    Args:
      base_url: e.g. "http://localhost:8501".
      model: model name; `version` or `label` pick a version (default: the newest).
      timeout: seconds per request.
      ca_cert: PEM file of the CA that signed an https:// server's certificate (default: the
        system's roots).
      cert / key: PEM files of a client certificate and its key, for servers that require one.
      connections: connections kept open to the server, for that many requests from as many threads
        at once (more work, but open and close a connection each).
    """

    def __init__(self, base_url: str, model: str, version: int | None = None, label: str | None = None,
                 timeout: float = 60.0, ca_cert: str | None = None, cert: str | None = None,
                 key: str | None = None, connections: int = 10):
        import requests
        from requests.adapters import HTTPAdapter

        if (cert is None) != (key is None):
            raise ValueError(f"Give both `cert` and `key`, or neither. Received: cert={cert!r}, key={key!r}")
        self.base_url = base_url.rstrip("/")
        self.model_path = _model_path(model, version, label)
        self.timeout = timeout
        self._session = requests.Session()
        for scheme in ("http://", "https://"):
            self._session.mount(scheme, HTTPAdapter(pool_maxsize=connections))
        # The environment (HTTPS_PROXY/NO_PROXY, REQUESTS_CA_BUNDLE) is read once, here, as requests
        # would read it; requests reads it again on every request otherwise (~2 ms a call: it walks
        # os.environ twice). A .netrc is not consulted (TF Serving has no HTTP authentication).
        self._session.trust_env = False
        self._session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        self._tls = {}
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if ca_cert is not None:
            self._tls["verify"] = str(ca_cert)
        elif bundle:
            self._tls["verify"] = bundle
        if cert is not None:
            self._tls["cert"] = (str(cert), str(key))
        self._floats: dict[str, set[str]] = {}  # signature -> its DT_FLOAT outputs
        self._noise: tuple[bool, float | None] | None = None  # encoded_image: (has noise_level, its default)

    def _call(self, method: str, path: str, body: bytes | None = None, convert=None):
        """The reply's JSON, or `convert(reply)` when given: converted while the garbage collector is
        paused and the parsed lists freed before it resumes (freed later, a 1 MB tensor's ~65k lists
        would be walked by the collection that resuming triggers: ~1 ms per call)."""
        response = self._session.request(
            method, self.base_url + path, data=body, timeout=self.timeout, stream=True,
            headers={"Content-Type": "application/json"} if body is not None else None, **self._tls,
        )
        # the body in one read: `response.content` reads a 1 MB tensor in 10 kB chunks, each a
        # trip through urllib3's layers (about as much CPU as parsing it); reading it to the end
        # hands the connection back to the pool
        content = response.raw.read(decode_content=True)
        with codec.gc_paused():
            payload = codec.loads(content) if content else {}
            if response.status_code != 200:
                text = content.decode(response.encoding or "utf-8", errors="replace")
                message = payload.get("error", text) if isinstance(payload, dict) else text
                raise ServingClientError(response.status_code, message)
            if convert is None:
                return payload
            result = convert(payload)
            del payload
            return result

    def status(self) -> dict:
        return self._call("GET", self.model_path)

    def metadata(self) -> dict:
        return self._call("GET", self.model_path + "/metadata")

    def predict(self, inputs: np.ndarray | dict[str, np.ndarray], signature_name: str = DEFAULT_SIGNATURE
                ) -> np.ndarray | dict[str, np.ndarray]:
        """Columnar predict. One array in -> one array out (float outputs as float32); dicts for several."""
        def jsonable(a):
            a = np.asarray(a)
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                return orjson.Fragment(codec._array_text(a))
            return a

        named = isinstance(inputs, dict)
        payload = {k: jsonable(v) for k, v in inputs.items()} if named else jsonable(inputs)
        body = orjson.dumps({"signature_name": signature_name, "inputs": payload}, option=orjson.OPT_SERIALIZE_NUMPY)
        floats = self._float_outputs(signature_name)

        def convert(payload):
            outputs = payload["outputs"]
            if isinstance(outputs, dict) and not ("b64" in outputs and len(outputs) == 1):
                return {k: _as_array(v, k in floats) for k, v in outputs.items()}
            return _as_array(outputs, bool(floats))

        return self._call("POST", self.model_path + ":predict", body, convert)

    def _float_outputs(self, signature_name: str) -> set[str]:
        """The signature's DT_FLOAT outputs (from the metadata, asked once): servers may write their
        whole-number values as JSON integers, which must still come back as float32."""
        if signature_name not in self._floats:
            signatures = self.metadata()["metadata"]["signature_def"]["signature_def"]
            outputs = signatures.get(signature_name, {}).get("outputs", {})
            self._floats[signature_name] = {k for k, v in outputs.items() if v.get("dtype") == "DT_FLOAT"}
        return self._floats[signature_name]

    def upscale_image(self, image: bytes, noise_level: float | None = None) -> bytes:
        """Encoded image (PNG/JPEG/WebP) in -> upscaled PNG bytes out (`noise_level`: see `upscale_images`)."""
        return self.upscale_images([image], noise_level)[0]

    def _noise_input(self) -> tuple[bool, float | None]:
        """Whether the `encoded_image` signature has a `noise_level` input, and its default (metadata, asked once)."""
        if self._noise is None:
            signatures = self.metadata()["metadata"]["signature_def"]["signature_def"]
            signature = signatures.get(ENCODED_SIGNATURE, {})
            default = signature.get("defaults", {}).get(NOISE_INPUT, {})
            values = default.get("float_val") or []
            if not values and default.get("tensor_content"):
                values = np.frombuffer(base64.b64decode(default["tensor_content"]), "<f4").tolist()
            self._noise = (NOISE_INPUT in signature.get("inputs", {}), float(values[0]) if values else None)
        return self._noise

    def upscale_images(self, images: list[bytes], noise_level: float | None = None) -> list[bytes]:
        """Encoded images in -> PNG bytes out. A model with a noise input (SRMD) gets `noise_level`, or
        its signature's default: TF Serving's REST API wants every input of a signature."""
        return self.send_images_request(self.images_request(images, noise_level))

    def images_request(self, images: list[bytes], noise_level: float | None = None) -> bytes:
        """The body `upscale_images` POSTs for `images` (JSON, each image `{"b64": ...}`): what a
        server's or a gateway's request limit counts (`request_size`)."""
        encoded = [{"b64": base64.b64encode(b).decode("ascii")} for b in images]
        has_noise, default = self._noise_input()
        if not has_noise and noise_level is not None:
            raise ValueError("`noise_level`: the served model takes no noise level (its encoded_image "
                             f"signature has no {NOISE_INPUT!r} input)")
        level = default if noise_level is None else float(noise_level)
        if has_noise and level is None:
            raise ValueError("`noise_level`: the served model needs one (its signature gives no default)")
        instances = [{BYTES_INPUT: e, NOISE_INPUT: level} for e in encoded] if has_noise else encoded
        return orjson.dumps({"signature_name": ENCODED_SIGNATURE, "instances": instances})

    @staticmethod
    def request_size(request: bytes) -> int:
        """Bytes of an `images_request` body on the wire."""
        return len(request)

    def send_images_request(self, request: bytes) -> list[bytes]:
        """POSTs an `images_request` body; the upscaled PNG bytes. Safe to call from several threads."""
        predictions = self._call("POST", self.model_path + ":predict", request)["predictions"]
        return [base64.b64decode(p["b64"]) for p in predictions]

    def close(self) -> None:
        self._session.close()


def _as_array(value, is_float: bool = False) -> np.ndarray:
    """A JSON tensor as numpy: floats (and `is_float` tensors written as integers) as float32, ints as int64."""
    if isinstance(value, dict) and "b64" in value:
        return np.array(base64.b64decode(value["b64"]), dtype=object)
    first = value
    while isinstance(first, list) and first:
        first = first[0]
    if isinstance(first, float) or is_float:
        try:  # naming the dtype up front is about twice as fast as letting numpy infer it
            return np.array(value, dtype=np.float32)
        except (ValueError, TypeError):
            pass
    arr = np.asarray(value)
    return arr.astype(np.float32) if arr.dtype.kind == "f" else arr


class GrpcClient:
    """TF Serving gRPC client (`PredictionService`, `ModelService`) with large message limits.

    Args:
      target: "host:port" (e.g. "localhost:8500").
      model: model name; `version` or `label` pick a version.
      timeout: seconds per call.
      max_message_bytes: send/receive limit (grpcio's default of 4 MiB is too small for images).
      tls: speak TLS (implied by `ca_cert` or `cert`); ca_cert: PEM file of the server's CA
        (default: the system's roots); cert / key: a client certificate and its key (mutual TLS).
    """

    def __init__(self, target: str, model: str, version: int | None = None, label: str | None = None,
                 timeout: float = 60.0, max_message_bytes: int = 2**31 - 1, tls: bool = False,
                 ca_cert: str | None = None, cert: str | None = None, key: str | None = None):
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        if version is not None and label is not None:
            raise ValueError(f"Give a version or a label, not both. Received: version={version!r}, label={label!r}")
        self.model, self.version, self.label, self.timeout = model, version, label, timeout
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        if tls or ca_cert is not None or cert is not None or key is not None:
            from sr_tf.serving.tls import grpc_channel_credentials

            self._channel = grpc.secure_channel(target, grpc_channel_credentials(ca_cert, cert, key), options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def _fill_spec(self, spec, signature_name: str | None = None) -> None:
        spec.name = self.model
        if self.version is not None:
            spec.version.value = self.version
        if self.label is not None:
            spec.version_label = self.label
        if signature_name is not None:
            spec.signature_name = signature_name

    def _call(self, method, request):
        import grpc

        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as err:
            raise ServingClientError(err.code().name, err.details()) from None

    def predict(self, inputs: np.ndarray | dict[str, np.ndarray], signature_name: str = DEFAULT_SIGNATURE,
                input_name: str = "images") -> np.ndarray | dict[str, np.ndarray]:
        """Arrays in, arrays out; a bare array goes to `input_name` and one output comes back bare."""
        named = inputs if isinstance(inputs, dict) else {input_name: inputs}
        outputs = self._send_predict(self._predict_request(named, signature_name))
        return outputs if isinstance(inputs, dict) or len(outputs) != 1 else next(iter(outputs.values()))

    def _predict_request(self, inputs: dict[str, np.ndarray], signature_name: str):
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._fill_spec(request.model_spec, signature_name)
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        return request

    def _send_predict(self, request) -> dict[str, np.ndarray]:
        import tensorflow as tf

        response = self._call(self._predict.Predict, request)
        return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}

    def upscale_images(self, images: list[bytes], noise_level: float | None = None) -> list[bytes]:
        """`noise_level`: for a model with a noise input (SRMD); None leaves it to the signature's default."""
        return self.send_images_request(self.images_request(images, noise_level))

    def images_request(self, images: list[bytes], noise_level: float | None = None):
        """The `PredictRequest` `upscale_images` sends for `images` (its size: `request_size`)."""
        inputs = {BYTES_INPUT: np.array(images, dtype=object)}
        if noise_level is not None:
            inputs[NOISE_INPUT] = np.array([noise_level], np.float32)
        return self._predict_request(inputs, ENCODED_SIGNATURE)

    @staticmethod
    def request_size(request) -> int:
        """Bytes of an `images_request` message (serialized, as a server's message limit counts it)."""
        return request.ByteSize()

    def send_images_request(self, request) -> list[bytes]:
        """Sends an `images_request`; the upscaled PNG bytes. Safe to call from several threads."""
        return list(self._send_predict(request)[BYTES_OUTPUT])

    def upscale_image(self, image: bytes, noise_level: float | None = None) -> bytes:
        return self.upscale_images([image], noise_level)[0]

    def status(self):
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._fill_spec(request.model_spec)
        return self._call(self._models.GetModelStatus, request)

    def metadata(self):
        """The `SignatureDefMap` of the model."""
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._fill_spec(request.model_spec)
        response = self._call(self._predict.GetModelMetadata, request)
        result = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(result)
        return result

    def close(self) -> None:
        self._channel.close()
