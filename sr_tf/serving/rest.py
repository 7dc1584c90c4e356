"""TF Serving's REST API as a Starlette (ASGI) app.

Routes (as in tensorflow_serving/g3doc/api_rest.md):
  GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            model status
  GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   signature defs
  POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict    row or columnar JSON
  GET  /monitoring/prometheus/metrics                          Prometheus text format
With a `VertexConfig`, also Vertex AI's health and predict routes.
Errors answer `{"error": "..."}` with the status code of their cause.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time

import orjson
from google.protobuf import json_format
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sr_tf.serving import codec
from sr_tf.serving.errors import Code, ServingError, invalid
from sr_tf.serving.service import PredictionCore, signature_def_map, status_response

_PATH = re.compile(
    r"^(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<suffix>/metadata|:predict|:classify|:regress)?$"
)
METRICS_PATH = "/monitoring/prometheus/metrics"


@dataclasses.dataclass(frozen=True)
class VertexConfig:
    """Vertex AI custom-container routes (from `AIP_HEALTH_ROUTE` / `AIP_PREDICT_ROUTE`)."""

    model_name: str
    health_route: str = "/health"
    predict_route: str = "/predict"


def _json(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def _error(err: ServingError) -> Response:
    return _json(codec.error_body(err.message), err.code.http_status)


def _proto_json(message) -> bytes:
    return orjson.dumps(json_format.MessageToDict(
        message, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
    ))


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ServingError(
            Code.PAYLOAD_TOO_LARGE,
            f"Request body is {declared} bytes, more than the limit of {limit} bytes (--max-request-bytes)",
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ServingError(
                Code.PAYLOAD_TOO_LARGE,
                f"Request body is more than the limit of {limit} bytes (--max-request-bytes)",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(core: PredictionCore, vertex: VertexConfig | None = None,
               metrics_path: str | None = METRICS_PATH) -> Starlette:
    """The ASGI app of one server. `metrics_path=None` turns the Prometheus endpoint off."""
    async def in_thread(fn, *args):
        # JSON decoding and encoding of large tensors run off the event loop (default thread pool)
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def predict(name: str, version: int | None, label: str | None, request: Request,
                      api: str, vertex_mode: bool = False) -> Response:
        start, status = time.perf_counter(), "OK"
        try:
            body = await _read_body(request, core.limits.max_request_bytes)
            parsed = await in_thread(codec.loads, body)
            if not isinstance(parsed, dict):
                raise invalid("JSON Parse error: request body is not a JSON object")
            sig_name = parsed.get("signature_name", "")
            if vertex_mode:
                parameters = parsed.get("parameters")
                if isinstance(parameters, dict):
                    sig_name = parameters.get("signature_name", sig_name)
                if "instances" not in parsed:
                    raise invalid("Vertex AI requests need an 'instances' list")
                parsed = {"instances": parsed["instances"]}
            servable, signature = core.resolve(name, version, label, sig_name)
            bools = b"true" in body or b"false" in body
            inputs, fmt = await in_thread(codec.parse_predict_request, parsed, signature.inputs, bools)
            inputs = await in_thread(core.check_inputs, signature, inputs)
            future = core.submit(servable, signature, inputs)
            try:
                outputs = await asyncio.wait_for(asyncio.wrap_future(future), core.limits.timeout_seconds)
            except TimeoutError:
                raise core.limits.deadline_error() from None
            return _json(await in_thread(codec.format_predict_response, outputs, fmt))
        except ServingError as err:
            status = err.code.name
            return _error(err)
        except Exception as err:  # a bug or a model failure: answer 500, never drop the connection
            status = Code.INTERNAL.name
            return _error(ServingError(Code.INTERNAL, f"{type(err).__name__}: {err}"))
        finally:
            core.metrics.observe(name, api, status, time.perf_counter() - start)

    async def models(request: Request) -> Response:
        rest = request.path_params["rest"]
        m = _PATH.match(rest)
        if m is None:
            return _error(invalid(f"Malformed request: {request.method} {request.url.path}"))
        name, suffix, label = m["name"], m["suffix"], m["label"]
        version = int(m["version"]) if m["version"] else None
        try:
            if request.method == "POST" and suffix == ":predict":
                return await predict(name, version, label, request, "rest_predict")
            if request.method == "POST" and suffix in (":classify", ":regress"):
                raise ServingError(Code.UNIMPLEMENTED, f"{suffix[1:]} is not implemented by this server; use :predict")
            if request.method == "GET" and suffix == "/metadata":
                servable = core.manager.resolve(name, version, label)
                meta = json_format.MessageToDict(
                    signature_def_map(servable), always_print_fields_with_no_presence=True,
                    preserving_proto_field_name=True,
                )
                meta.pop("@type", None)
                return _json(orjson.dumps({
                    "model_spec": {"name": name, "signature_name": "", "version": str(servable.version)},
                    "metadata": {"signature_def": meta},
                }))
            if request.method == "GET" and suffix is None:
                return _json(_proto_json(status_response(core.manager, name, version, label)))
            return _error(invalid(f"Malformed request: {request.method} {request.url.path}"))
        except ServingError as err:
            return _error(err)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(core.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    routes = [Route("/v1/models/{rest:path}", models, methods=["GET", "POST"])]
    if metrics_path:
        routes.append(Route(metrics_path, metrics, methods=["GET"]))
    if vertex is not None:
        async def vertex_health(request: Request) -> Response:
            try:
                core.manager.resolve(vertex.model_name)
            except ServingError as err:
                return _error(ServingError(Code.UNAVAILABLE, err.message))
            return _json(b"{}")

        async def vertex_predict(request: Request) -> Response:
            return await predict(vertex.model_name, None, None, request, "vertex_predict", vertex_mode=True)

        routes.append(Route(vertex.health_route, vertex_health, methods=["GET"]))
        routes.append(Route(vertex.predict_route, vertex_predict, methods=["POST"]))

    async def not_found(request: Request, exc) -> Response:
        return _json(codec.error_body(f"Not found: {request.method} {request.url.path}"), 404)

    async def method_not_allowed(request: Request, exc) -> Response:
        return _json(codec.error_body(f"Malformed request: {request.method} {request.url.path}"), 400)

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: method_not_allowed})
