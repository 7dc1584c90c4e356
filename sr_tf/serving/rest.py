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
import concurrent.futures
import dataclasses
import logging
import re
import time

import orjson
from google.protobuf import json_format
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sr_tf.config import ConfigBase
from sr_tf.serving import codec
from sr_tf.serving.errors import Code, ServingError, invalid
from sr_tf.serving.service import PredictionCore, signature_def_map, status_response

log = logging.getLogger("sr_tf.serving")
_PATH = re.compile(
    r"^(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<suffix>/metadata|:predict|:classify|:regress)?$"
)
METRICS_PATH = "/monitoring/prometheus/metrics"


@dataclasses.dataclass(frozen=True)
class VertexConfig(ConfigBase):
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


def _signature_name(parsed: dict) -> str:
    name = parsed.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid(f"'signature_name' must be a string. Received: {codec.json_type(name)}")
    return name


def _vertex_request(parsed: dict, sig_name: str) -> tuple[str, dict]:
    """Vertex AI's `{"instances": [...], "parameters": {...}}` -> (signature name, row-format body)."""
    parameters = parsed.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise invalid(f"'parameters' must be an object. Received: {codec.json_type(parameters)}")
    if parameters:
        sig_name = _signature_name(parameters) or sig_name
    if "instances" not in parsed:
        raise invalid("Vertex AI requests need an 'instances' list")
    if not isinstance(parsed["instances"], list):
        raise invalid("Expecting 'instances' to be an list/array")
    return sig_name, {"instances": parsed["instances"]}


def _json_shape(value) -> tuple:
    """The shape of a nested-list JSON value along its first elements (enough to group images)."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return tuple(shape)


def _mixed_shapes(instances: list) -> bool:
    return len({_json_shape(i) for i in instances}) > 1


async def _disconnected(request: Request) -> None:
    """Returns when the client disconnects (the body has been read, so only that message is left)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def create_app(core: PredictionCore, vertex: VertexConfig | None = None,
               metrics_path: str | None = METRICS_PATH, cors: bool = False, ui: bool = False,
               threads: int | None = None) -> Starlette:
    """The ASGI app of one server.

    Args:
      metrics_path: the Prometheus endpoint's path (None: off).
      cors: add CORS headers, as TF Serving's `--rest_api_enable_cors_support` does.
      ui: mount the web page: the routes `sr_tf.serving.ui.routes(core)` returns (a module of its
        own, with its static files); a build without it serves the API alone.
      threads: threads decoding and encoding JSON (None: asyncio's default pool).
    """
    executor = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="sr-tf-rest") if threads else None

    async def in_thread(fn, *args):
        # JSON decoding and encoding of large tensors run off the event loop
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    async def predict(name: str, version: int | None, label: str | None, request: Request,
                      api: str, vertex_mode: bool = False) -> Response:
        start, status = time.perf_counter(), "OK"
        try:
            body = await _read_body(request, core.limits.max_request_bytes)
            parsed = await in_thread(codec.loads, body, core.limits.max_json_values)
            if not isinstance(parsed, dict):
                raise invalid("JSON Parse error: request body is not a JSON object")
            sig_name = _signature_name(parsed)
            if vertex_mode:
                sig_name, parsed = _vertex_request(parsed, sig_name)
            servable, signature = core.resolve(name, version, label, sig_name)
            bools = b"true" in body or b"false" in body
            if vertex_mode and len(signature.inputs) == 1 and _mixed_shapes(parsed["instances"]):
                # Vertex AI batch prediction sends several jsonl lines in one request; images of
                # different sizes cannot form one tensor, so each size runs as its own request.
                return _json(await vertex_mixed(servable, signature, parsed["instances"], bools, request))
            inputs, fmt = await in_thread(codec.parse_predict_request, parsed, signature.inputs, bools)
            inputs = await in_thread(core.check_inputs, signature, inputs)
            outputs = await wait_for_outputs(core.submit(servable, signature, inputs), request)
            return _json(await in_thread(codec.format_predict_response, outputs, fmt))
        except ServingError as err:
            status = err.code.name
            return _error(err)
        except Exception as err:  # a bug or a model failure: answer 500, never drop the connection
            status = Code.INTERNAL.name
            return _error(ServingError(Code.INTERNAL, f"{type(err).__name__}: {err}"))
        finally:
            core.metrics.observe(name, api, status, time.perf_counter() - start)

    async def wait_for_outputs(future: concurrent.futures.Future, request: Request) -> dict:
        """The request's outputs; cancels (drops, if not started) the work when the client
        disconnects or the timeout passes."""
        waiter = asyncio.wrap_future(future)
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            done, _ = await asyncio.wait({waiter, gone}, timeout=core.limits.timeout_seconds,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if waiter in done:
            return waiter.result()
        future.cancel()
        waiter.cancel()
        if gone in done:
            raise ServingError(Code.CANCELLED, "The client disconnected")
        raise core.limits.deadline_error()

    async def vertex_mixed(servable, signature, instances: list, bools: bool, request: Request) -> bytes:
        groups: dict[tuple, list[int]] = {}
        for i, instance in enumerate(instances):
            groups.setdefault(_json_shape(instance), []).append(i)
        futures = []
        for indices in groups.values():
            part = {"instances": [instances[i] for i in indices]}
            inputs, _ = await in_thread(codec.parse_predict_request, part, signature.inputs, bools)
            futures.append((indices, core.submit(servable, signature, await in_thread(core.check_inputs, signature, inputs))))
        predictions: list = [None] * len(instances)
        for indices, future in futures:
            outputs = await wait_for_outputs(future, request)
            rows = orjson.loads(await in_thread(codec.format_predict_response, outputs, "row"))["predictions"]
            for i, row in zip(indices, rows, strict=True):
                predictions[i] = row
        return orjson.dumps({"predictions": predictions})

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
        return Response(core.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

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

    ui_routes = _ui_routes(core) if ui else []
    routes.extend(ui_routes)
    middleware = []
    if cors:
        from starlette.middleware import Middleware
        from starlette.middleware.cors import CORSMiddleware

        middleware.append(Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST", "OPTIONS"],
                                     allow_headers=["*"]))
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={404: not_found, 405: method_not_allowed})
    app.state.ui = bool(ui_routes)
    return app


def _ui_routes(core: PredictionCore) -> list:
    try:
        from sr_tf.serving import ui
    except ImportError:
        log.warning("The web page is not part of this installation; serving the API only")
        return []
    return list(ui.routes(core))
