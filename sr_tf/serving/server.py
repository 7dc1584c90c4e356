"""The embedded model server: REST (uvicorn + Starlette) and gRPC (grpcio) over one model manager.

Safe defaults: binds 127.0.0.1, limits request bodies and input pixels, bounds the request queue
(429 when full, 503 while shutting down) and shuts down gracefully: on SIGTERM/SIGINT it stops
accepting, lets requests in flight finish for up to `grace_seconds`, answers the ones still
unfinished then with 503 UNAVAILABLE, and stops. Both ports are bound (exclusively: no
SO_REUSEPORT sharing) before any model loads, so a busy port is reported at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import signal
import socket
import threading
import time

import uvicorn

from sr_tf.config import ConfigBase
from sr_tf.serving.batching import BatchingConfig
from sr_tf.serving.errors import Code, ServingError
from sr_tf.serving.model_config import ModelConfig
from sr_tf.serving.models import ModelManager
from sr_tf.serving.rest import METRICS_PATH, VertexConfig, create_app
from sr_tf.serving.service import Limits, PredictionCore
from sr_tf.serving.tls import TlsConfig

log = logging.getLogger("sr_tf.serving")


@dataclasses.dataclass(frozen=True)
class ServerConfig(ConfigBase):
    """How the server listens and behaves.

    Attributes:
      host: interface to bind (127.0.0.1: this machine only; 0.0.0.0 to accept other hosts).
      rest_port / grpc_port: ports; 0 picks a free one, None turns that front end off.
      limits: body-size and pixel limits.
      batching: server-side batching and queue bound.
      per_model_batching: a version's own `batching_params.pbtxt` replaces `batching`'s queue
        parameters for that model (`--enable_per_model_batching_parameters`; only with
        `batching.enabled`, as in TF Serving; see `sr_tf.serving.batching.model_batching`).
      poll_seconds: how often model base paths are re-scanned for new versions.
      warmup: replay warmup requests before a version serves.
      metrics_path: Prometheus endpoint path (None: off).
      vertex: Vertex AI custom-container routes, or None.
      grace_seconds: longest wait for in-flight requests at shutdown.
      load_retries / load_retry_interval: further load attempts of a failed version and the
        seconds between them (`--max_num_load_retries`, `--load_retry_interval_micros`).
      warmup_iterations: replays of each warmup request (`--num_request_iterations_for_warmup`).
      saved_model_tags: MetaGraph tags to load (`--saved_model_tags`).
      grpc_workers: gRPC handler threads (`--grpc_max_threads`).
      grpc_options: extra gRPC server channel arguments (`--grpc_channel_arguments`).
      grpc_socket_path: also serve gRPC on this UNIX socket (`--grpc_socket_path`).
      rest_threads: threads decoding/encoding REST JSON (`--rest_api_num_threads`; None: automatic).
      cors: answer CORS preflights and add CORS headers (`--rest_api_enable_cors_support`).
      tensor_content: gRPC Predict responses pack values in `tensor_content` instead of the typed
        fields (`--enable_serialization_as_tensor_content`; TF Serving's default is the fields).
      ui: serve the web page at `/` (off in Vertex AI mode); needs `sr_tf.serving.ui`.
      model_config_file / model_config_poll_seconds: re-read this `--model_config_file` every so
        many seconds and serve what it lists (0: read once, at start).
      tls: TLS / mutual TLS for gRPC (and REST when `tls.rest`), from `--ssl_config_file`.
      grpc_health: serve `grpc.health.v1.Health` (`--enable_grpc_healthcheck_service`; see
        `sr_tf.serving.health`). gRPC then listens while the models load, so probes see NOT_SERVING.
      request_log_file_bytes: size at which a request log file (a model's `logging_config`) is
        closed and the next begun.
    """

    host: str = "127.0.0.1"
    rest_port: int | None = 8501
    grpc_port: int | None = 8500
    limits: Limits = dataclasses.field(default_factory=Limits)
    batching: BatchingConfig = dataclasses.field(default_factory=BatchingConfig)
    per_model_batching: bool = False
    poll_seconds: float = 1.0
    warmup: bool = True
    metrics_path: str | None = METRICS_PATH
    vertex: VertexConfig | None = None
    grace_seconds: float = 30.0
    load_retries: int = 5
    load_retry_interval: float = 60.0
    warmup_iterations: int = 1
    saved_model_tags: tuple[str, ...] = ("serve",)
    grpc_workers: int = 16
    grpc_options: tuple[tuple[str, object], ...] = ()
    grpc_socket_path: str | None = None
    rest_threads: int | None = None
    cors: bool = False
    tensor_content: bool = False
    ui: bool = False
    model_config_file: str | None = None
    model_config_poll_seconds: float = 0.0
    tls: TlsConfig | None = None
    grpc_health: bool = False
    request_log_file_bytes: int = 64 << 20


class _UvicornServer(uvicorn.Server):
    """uvicorn without its own signal handling: `ModelServer` owns SIGINT/SIGTERM, so the gRPC
    server and the batch workers are drained too (uvicorn would re-raise the signal and exit)."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


class PortInUseError(OSError):
    """A port another process listens on (the message names it and the flag that chooses it)."""


def bind_socket(host: str, port: int, what: str = "REST", flag: str = "--rest_api_port") -> socket.socket:
    """A listening TCP socket on host:port, exclusively (SO_REUSEADDR only lets a port in
    TIME_WAIT be reused; there is no SO_REUSEPORT, so a port in use is an error).

    Raises:
      PortInUseError: the port is in use.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise PortInUseError(f"{what} port {port} on {host} is already in use ({err.strerror}); "
                             f"stop the other server or choose another port with {flag}") from None
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def check_ports_free(host: str, ports: dict[str, tuple[int, str]]) -> None:
    """Fails fast (before TensorFlow is even imported) when a port is taken: `ports` maps
    "REST"/"gRPC" to (port, flag). Port 0 (any free port) is skipped.

    Raises:
      PortInUseError: naming the first busy port.
    """
    for what, (port, flag) in ports.items():
        if port:
            bind_socket(host, port, what, flag).close()


def _grpc_credentials(tls: TlsConfig | None):
    if tls is None:
        return None
    from sr_tf.serving.tls import grpc_server_credentials

    return grpc_server_credentials(tls)


def _rest_tls(tls: TlsConfig | None) -> dict:
    """uvicorn.Config arguments serving HTTPS (TF Serving's REST has no TLS: only when asked)."""
    if tls is None or not tls.rest:
        return {}
    from sr_tf.serving.tls import rest_ssl_context

    return {"ssl_context_factory": lambda config, default: rest_ssl_context(tls)}


class ModelServer:
    """Loads the models and runs both front ends.

    `start()` returns once the models are loaded and both ports listen (used by tests and
    embedding); `serve_forever()` runs until SIGINT/SIGTERM (used by `sr-tf serve`). Both bind
    the ports first (`bind()`), then load the models.
    """

    def __init__(self, models: list[ModelConfig], config: ServerConfig | None = None):
        self.config = c = config or ServerConfig()
        self.manager = ModelManager(models, poll_seconds=c.poll_seconds, warmup=c.warmup,
                                    load_retries=c.load_retries, load_retry_interval=c.load_retry_interval,
                                    warmup_iterations=c.warmup_iterations, tags=c.saved_model_tags,
                                    batching=c.batching, per_model_batching=c.per_model_batching)
        self.core = PredictionCore(self.manager, self.config.batching, self.config.limits)
        if any(m.logging is not None for m in models) or c.model_config_file:
            from sr_tf.serving.request_log import RequestLogger

            self.core.request_log = RequestLogger(
                lambda name: getattr(self.manager.config(name), "logging", None), self.core.metrics.registry,
                c.saved_model_tags, c.request_log_file_bytes)
        self.rest_port: int | None = None
        self.grpc_port: int | None = None
        self._grpc = None
        self._uvicorn: uvicorn.Server | None = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._bound = False
        self._ui_mounted = False
        self.health = None  # a HealthReporter when config.grpc_health

    def bind(self) -> None:
        """Binds the gRPC and REST ports (no model is loaded yet).

        Raises:
          PortInUseError: a port is in use; nothing stays bound.
        """
        from sr_tf.serving.grpc_service import create_grpc_server

        if self._bound:
            return
        c = self.config
        try:
            if c.grpc_port is not None:
                try:
                    self._grpc, self.grpc_port = create_grpc_server(
                        self.core, f"{c.host}:{c.grpc_port}", c.grpc_workers, list(c.grpc_options),
                        tensor_content=c.tensor_content, credentials=_grpc_credentials(c.tls))
                except OSError:
                    raise PortInUseError(
                        f"gRPC port {c.grpc_port} on {c.host} is already in use; stop the other server "
                        "or choose another port with --port") from None
                if c.grpc_health:
                    from sr_tf.serving.health import HealthReporter

                    self.health = HealthReporter(self.manager)
                    self.health.add_to(self._grpc)
                if c.grpc_socket_path and not self._grpc.add_insecure_port(f"unix:{c.grpc_socket_path}"):
                    raise PortInUseError(f"Cannot listen on the UNIX socket {c.grpc_socket_path} (--grpc_socket_path)")
            if c.rest_port is not None:
                self._sock = bind_socket(c.host, c.rest_port)
                self.rest_port = self._sock.getsockname()[1]
        except OSError:
            self._grpc = None
            raise
        self._bound = True

    def _prepare(self) -> None:
        self.bind()
        c = self.config
        if self.health is not None:  # health probes are answered (NOT_SERVING) while models load
            self._grpc.start()
            self.health.start()
        self.manager.start()
        if self._grpc is not None:
            if self.health is None:
                self._grpc.start()
            else:
                self.health.update()
            log.info("gRPC listening on %s:%d", c.host, self.grpc_port)
        if self._sock is not None:
            app = create_app(self.core, c.vertex, c.metrics_path, cors=c.cors, ui=c.ui and c.vertex is None,
                             threads=c.rest_threads)
            self._ui_mounted = app.state.ui
            self._uvicorn = _UvicornServer(uvicorn.Config(
                app, log_level="warning", access_log=False, lifespan="off",
                # our own deadline (grace_seconds) answers what is unfinished first; this is a backstop
                timeout_graceful_shutdown=int(c.grace_seconds) + 5, limit_concurrency=None,
                **_rest_tls(c.tls),
            ))
            log.info("REST listening on http://%s:%d", c.host, self.rest_port)

    def urls(self, model: str = "<name>") -> list[str]:
        """What a user connects to once serving, e.g. ["REST http://127.0.0.1:8501/v1/models/m:predict",
        "gRPC 127.0.0.1:8500"] (a wildcard host is shown as 127.0.0.1)."""
        c = self.config
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(c.host, c.host)
        host = f"[{host}]" if ":" in host else host
        out = []
        if self.rest_port is not None:
            base = f"{'https' if c.tls is not None and c.tls.rest else 'http'}://{host}:{self.rest_port}"
            if c.vertex is not None:
                out.append(f"Vertex AI predict {base}{c.vertex.predict_route}, health {base}{c.vertex.health_route}")
            out.append(f"REST {base}/v1/models/{model}:predict")
            if self._ui_mounted:
                out.append(f"web page {base}/")
            if c.metrics_path:
                out.append(f"metrics {base}{c.metrics_path}")
        if self.grpc_port is not None:
            out.append(f"gRPC {host}:{self.grpc_port}" + (" (TLS)" if c.tls is not None else ""))
        if c.grpc_socket_path:
            out.append(f"gRPC unix:{c.grpc_socket_path}")
        return out

    def start(self) -> ModelServer:
        """Starts in background threads; returns when ready to answer."""
        self._prepare()
        if self._uvicorn is not None:
            self._thread = threading.Thread(
                target=lambda: asyncio.run(self._uvicorn.serve(sockets=[self._sock])),
                name="sr-tf-rest", daemon=True,
            )
            self._thread.start()
            while not self._uvicorn.started:
                if not self._thread.is_alive():
                    raise RuntimeError("The REST server failed to start")
                threading.Event().wait(0.01)
        return self

    def serve_forever(self, on_ready=None) -> bool:
        """Runs until SIGINT/SIGTERM, then shuts down gracefully (see the module docstring).

        Args:
          on_ready: called once the models are loaded and the ports listen.

        Returns:
          True when everything stopped; False when a model call was still running at the end of
          the grace period (its request was answered 503; the caller should exit without waiting).
        """
        self._prepare()
        # The loaded models and TensorFlow hold millions of long-lived objects; keeping them out of
        # the cyclic collector's passes keeps request-time collections short.
        gc.collect()
        gc.freeze()
        stop = threading.Event()

        def request_stop(signum, frame):
            if stop.is_set():
                return
            log.info("Received signal %d: finishing requests in flight (up to %g s), then exiting",
                     signum, self.config.grace_seconds)
            stop.set()
            self._begin_shutdown()

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        self._watch_config_file()
        if on_ready is not None:
            on_ready()
        try:
            if self._uvicorn is not None:
                self._uvicorn.run(sockets=[self._sock])  # returns after draining HTTP requests
            else:
                while not stop.wait(0.5):
                    pass
        finally:
            clean = self._shutdown_rest_free()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return clean

    def _watch_config_file(self) -> None:
        """Re-reads `model_config_file` when it changes (TF Serving's config-file polling)."""
        c = self.config
        if not c.model_config_file or c.model_config_poll_seconds <= 0:
            return
        from sr_tf.serving.model_config import parse_model_config_file

        def poll():
            last = os.stat(c.model_config_file).st_mtime_ns
            while not self.manager.stopped.wait(c.model_config_poll_seconds):
                try:
                    mtime = os.stat(c.model_config_file).st_mtime_ns
                    if mtime != last:
                        last = mtime
                        self.manager.reload_config(parse_model_config_file(c.model_config_file))
                        log.info("Reloaded %s", c.model_config_file)
                except (OSError, ValueError) as err:  # keep serving the last good config
                    log.error("Could not reload %s: %s", c.model_config_file, err)

        threading.Thread(target=poll, name="sr-tf-config-poll", daemon=True).start()

    def _begin_shutdown(self) -> None:
        """Stops intake now; at the end of the grace period answers what is unfinished with 503."""
        self._deadline = time.monotonic() + self.config.grace_seconds
        if self.health is not None:
            self.health.begin_shutdown()
        self.core.scheduler.stop_intake()
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        error = ServingError(Code.UNAVAILABLE, "The server is shutting down and the request did not finish "
                                               f"within the grace period ({self.config.grace_seconds:g} s)")
        timer = threading.Timer(self.config.grace_seconds, self.core.scheduler.abort, args=(error,))
        timer.daemon = True
        timer.start()
        self._abort_timer = timer

    def stop(self) -> bool:
        """Graceful stop (as on SIGTERM); returns as `serve_forever` does."""
        self._begin_shutdown()
        if self._thread is not None:
            self._thread.join(self.config.grace_seconds + 10)
        return self._shutdown_rest_free()

    def _shutdown_rest_free(self) -> bool:
        if getattr(self, "_deadline", None) is None:
            self._begin_shutdown()
        if self.health is not None:
            # keep answering probes (NOT_SERVING) while requests in flight finish: stopping the
            # gRPC server would refuse every new call at once
            while self.core.scheduler.pending and time.monotonic() < self._deadline:
                time.sleep(0.05)
        remaining = max(0.0, self._deadline - time.monotonic())
        if self._grpc is not None:
            # in-flight RPCs get their answer (or the abort's 503) by the deadline
            self._grpc.stop(grace=remaining + 1).wait()
            self._grpc = None
        clean = self.core.close(max(0.0, self._deadline - time.monotonic()) + 1)
        self._abort_timer.cancel()
        self.manager.stop()
        if self.health is not None:
            self.health.stop()
        if self.core.request_log is not None:
            self.core.request_log.close()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        return clean

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclasses.dataclass(frozen=True)
class VertexSettings:
    """Vertex AI custom-container settings read from `AIP_*` variables."""

    routes: VertexConfig
    port: int
    storage_uri: str

    @property
    def model_name(self) -> str:
        return self.routes.model_name


def vertex_from_env(environ: dict[str, str] | None = None, require_storage: bool = True) -> VertexSettings:
    """Vertex AI settings from `AIP_*` variables: routes, HTTP port (AIP_HTTP_PORT, default 8080)
    and the model's storage path (AIP_STORAGE_URI).

    Raises:
      ValueError: AIP_STORAGE_URI is missing and `require_storage`, or AIP_HTTP_PORT is not a port.
    """
    env = os.environ if environ is None else environ
    storage = env.get("AIP_STORAGE_URI", "")
    if not storage and require_storage:
        raise ValueError("Vertex AI mode needs AIP_STORAGE_URI (the exported model's folder), or a model "
                         "given with --model / --model_base_path.")
    port = env.get("AIP_HTTP_PORT", "8080")
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"AIP_HTTP_PORT must be a port number. Received: {port!r}")
    routes = VertexConfig(
        model_name=env.get("AIP_DEPLOYED_MODEL_ID") or env.get("MODEL_NAME") or "model",
        health_route=env.get("AIP_HEALTH_ROUTE", "/health"),
        predict_route=env.get("AIP_PREDICT_ROUTE", "/predict"),
    )
    return VertexSettings(routes, int(port), storage)
