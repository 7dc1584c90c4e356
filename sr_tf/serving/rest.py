"""TF Serving's REST API as a Starlette (ASGI) app.

Routes (as in tensorflow_serving/g3doc/api_rest.md):
  GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            model status
  GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   signature defs
  POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict    row or columnar JSON
  POST /v1/models/{name}[/versions/{v}|/labels/{l}]:classify|:regress   (TF Serving's answers
       for a model without such signatures)
  GET  /monitoring/prometheus/metrics                          Prometheus text format
matched as TF Serving's http_rest_api_util.cc matches them (whole, case-insensitively; any other
/v1/ path is 400 "Malformed request: GET /v1/foo"). With a `VertexConfig`, also Vertex AI's health
and predict routes; the web page's routes live outside /v1/.
Errors answer `{"error": "..."}` with the status code of their cause (http_server.cc).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import re
import time
import urllib.parse

import orjson
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sr_tf.config import ConfigBase
from sr_tf.serving import codec
from sr_tf.serving.errors import Code, ServingError, invalid
from sr_tf.serving.service import (
    CLASSIFY_METHOD,
    REGRESS_METHOD,
    PredictionCore,
    check_classify_regress,
    signature_def_map,
    status_response,
)

log = logging.getLogger("sr_tf.serving")
# http_rest_api_util.cc: the URL patterns, matched whole and case-insensitively (RE2 "(?i)")
_API_PATH = re.compile(r"/v1/.*", re.IGNORECASE)  # kHTTPRestApiHandlerPathRegex
_PREDICTION_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.IGNORECASE)
_STATUS_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:\/(metadata))?", re.IGNORECASE)
# http_rest_api_util.cc AddCORSHeaders
CORS_HEADERS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST, GET",
                "Access-Control-Allow-Headers": "Content-Type"}
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
    return codec.signature_name(parsed)


def _parse_model_info(method: str, path: str) -> tuple[bool, str, int | None, str | None, str]:
    """http_rest_api_util.cc `ParseModelInfo`: (matched, model name, version, label, method or
    subresource as written in the URL)."""
    m = (_PREDICTION_PATH if method == "POST" else _STATUS_PATH if method == "GET" else None)
    m = m.fullmatch(path) if m is not None else None
    if m is None:
        return False, "", None, None, ""
    name, version_text, label, what = (g or "" for g in m.groups())
    name = urllib.parse.unquote(name)
    version = None
    if version_text:
        version = int(version_text)
        if version >= 2**63:  # absl::SimpleAtoi into an int64_t
            raise invalid(f"Failed to convert version: {version_text} to numeric.")
    return True, name, version, urllib.parse.unquote(label) or None, what


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

        def decode_and_submit(body: bytes):
            """Off the event loop, in one hop (each hop to a thread and back costs two thread
            wake-ups): the body parsed, checked and queued -> (future, format, None); a Vertex AI
            request with images of several sizes -> (None, None, what `vertex_mixed` needs)."""
            parsed = codec.loads(body, core.limits.max_json_values)
            sig_name = _signature_name(parsed)  # also: the body must be an object
            if vertex_mode:
                sig_name, parsed = _vertex_request(parsed, sig_name)
            servable, signature = core.resolve(name, version, label, sig_name)
            bools = b"true" in body or b"false" in body
            if vertex_mode and len(signature.inputs) == 1 and _mixed_shapes(parsed["instances"]):
                # Vertex AI batch prediction sends several jsonl lines in one request; images of
                # different sizes cannot form one tensor, so each size runs as its own request.
                return None, None, (servable, signature, parsed["instances"], bools)
            inputs, fmt = codec.parse_predict_request(parsed, signature.inputs, bools)
            inputs = core.check_inputs(signature, inputs)
            return core.submit(servable, signature, inputs), fmt, None

        try:
            body = await _read_body(request, core.limits.max_request_bytes)
            future, fmt, mixed = await in_thread(decode_and_submit, body)
            if mixed is not None:
                return _json(await vertex_mixed(*mixed, request))
            outputs = await wait_for_outputs(future, request)
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

    async def classify_regress(name: str, version: int | None, label: str | None, request: Request,
                               method: str) -> Response:
        """`:classify` / `:regress` as http_rest_api_handler.cc: the body is parsed and checked
        first (json_tensor.cc FillClassifyRegressRequestFromJson), then the model's signature."""
        body = await _read_body(request, core.limits.max_request_bytes)
        parsed = await in_thread(codec.loads, body, core.limits.max_json_values)
        sig_name, _ = codec.parse_classify_regress_request(parsed)
        servable = core.manager.resolve(name, version, label)
        check_classify_regress(servable, sig_name, method)
        raise ServingError(Code.INTERNAL, "unreachable")  # check_classify_regress always raises

    async def api(request: Request) -> Response:
        """Every /v1/ request, dispatched as http_rest_api_handler.cc `ProcessRequest` does."""
        method = request.method
        path = request.scope.get("raw_path", b"").decode("latin-1").split("?")[0] or request.url.path
        if method == "OPTIONS":  # http_server.cc: a CORS preflight, answered with no body
            if re.search(r"https?://", request.headers.get("origin", "")):
                return Response(b"", 200)
            return Response(b"", 400)
        try:
            matched, name, version, label, what = _parse_model_info(method, path)
            if matched and method == "POST":
                if what == "predict":
                    return await predict(name, version, label, request, "rest_predict")
                if what in ("classify", "regress"):
                    return await classify_regress(
                        name, version, label, request, CLASSIFY_METHOD if what == "classify" else REGRESS_METHOD)
            elif matched and method == "GET":
                if not name:
                    raise invalid("Missing model name in request.")
                if what == "metadata":
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
                return _json(_proto_json(status_response(core.manager, name, version, label)))
            raise invalid(f"Malformed request: {method} {path}")
        except ServingError as err:
            return _error(err)
        except Exception as err:  # a bug: answer 500, never drop the connection
            return _error(ServingError(Code.INTERNAL, f"{type(err).__name__}: {err}"))

    async def metrics(request: Request) -> Response:
        # http_server.cc ProcessPrometheusRequest: "text/plain" (the exposition format's version
        # parameter is left out there too)
        return Response(core.metrics.exposition(), headers={"Content-Type": "text/plain"})

    routes = []
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

    async def not_found(request: Request, exc=None) -> Response:
        return _json(codec.error_body(f"Not found: {request.method} {request.url.path}"), 404)

    async def method_not_allowed(request: Request, exc) -> Response:
        return _json(codec.error_body(f"Malformed request: {request.method} {request.url.path}"), 400)

    async def other(request: Request) -> Response:
        """TF Serving handles every path matching "(?i)/v1/.*"; ours are not found."""
        if _API_PATH.fullmatch(request.url.path):
            return await api(request)
        return await not_found(request)

    ui_routes = _ui_routes(core) if ui else []
    routes.extend(ui_routes)
    routes.append(Route("/{path:path}", other, methods=["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]))
    middleware = []
    if cors:
        from starlette.middleware import Middleware

        middleware.append(Middleware(_CorsHeaders))
    app = Starlette(routes=routes, middleware=middleware,
                    exception_handlers={404: not_found, 405: method_not_allowed})
    app.state.ui = bool(ui_routes)
    return app


class _CorsHeaders:
    """`--rest_api_enable_cors_support`: http_server.cc adds `CORS_HEADERS` to every answer of
    the REST API (preflights included)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.decode("latin-1").lower() not in {h.lower() for h in CORS_HEADERS}]
                headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in CORS_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _ui_routes(core: PredictionCore) -> list:
    try:
        from sr_tf.serving import ui
    except ImportError:
        log.warning("The web page is not part of this installation; serving the API only")
        return []
    return list(ui.routes(core))
