"""The embedded model server: REST (uvicorn + Starlette) and gRPC (grpcio) over one model manager.

Safe defaults: binds 127.0.0.1, limits request bodies and input pixels, bounds the request queue
(429 when full, 503 while shutting down) and shuts down gracefully (stops accepting, finishes the
requests in flight, then stops the workers).
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

import uvicorn

from sr_tf.serving.batching import BatchingConfig
from sr_tf.serving.grpc_service import create_grpc_server
from sr_tf.serving.models import ModelConfig, ModelManager
from sr_tf.serving.rest import METRICS_PATH, VertexConfig, create_app
from sr_tf.serving.service import Limits, PredictionCore

log = logging.getLogger("sr_tf.serving")


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """How the server listens and behaves.

    Attributes:
      host: interface to bind (127.0.0.1: this machine only; 0.0.0.0 to accept other hosts).
      rest_port / grpc_port: ports; 0 picks a free one, None turns that front end off.
      limits: body-size and pixel limits.
      batching: server-side batching and queue bound.
      poll_seconds: how often model base paths are re-scanned for new versions.
      warmup: replay warmup requests before a version serves.
      metrics_path: Prometheus endpoint path (None: off).
      vertex: Vertex AI custom-container routes, or None.
      grace_seconds: longest wait for in-flight requests at shutdown.
    """

    host: str = "127.0.0.1"
    rest_port: int | None = 8501
    grpc_port: int | None = 8500
    limits: Limits = dataclasses.field(default_factory=Limits)
    batching: BatchingConfig = dataclasses.field(default_factory=BatchingConfig)
    poll_seconds: float = 1.0
    warmup: bool = True
    metrics_path: str | None = METRICS_PATH
    vertex: VertexConfig | None = None
    grace_seconds: float = 30.0
    grpc_workers: int = 16


class _UvicornServer(uvicorn.Server):
    """uvicorn without its own signal handling: `ModelServer` owns SIGINT/SIGTERM, so the gRPC
    server and the batch workers are drained too (uvicorn would re-raise the signal and exit)."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


class ModelServer:
    """Loads the models and runs both front ends.

    `start()` returns once the models are loaded and both ports listen (used by tests and
    embedding); `serve_forever()` runs until SIGINT/SIGTERM (used by `sr-tf serve`).
    """

    def __init__(self, models: list[ModelConfig], config: ServerConfig | None = None):
        self.config = config or ServerConfig()
        self.manager = ModelManager(models, poll_seconds=self.config.poll_seconds, warmup=self.config.warmup)
        self.core = PredictionCore(self.manager, self.config.batching, self.config.limits)
        self.rest_port: int | None = None
        self.grpc_port: int | None = None
        self._grpc = None
        self._uvicorn: uvicorn.Server | None = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def _prepare(self) -> None:
        self.manager.start()
        c = self.config
        if c.grpc_port is not None:
            self._grpc, self.grpc_port = create_grpc_server(self.core, f"{c.host}:{c.grpc_port}", c.grpc_workers)
            self._grpc.start()
            log.info("gRPC listening on %s:%d", c.host, self.grpc_port)
        if c.rest_port is not None:
            self._sock = _bind(c.host, c.rest_port)
            self.rest_port = self._sock.getsockname()[1]
            app = create_app(self.core, c.vertex, c.metrics_path)
            self._uvicorn = _UvicornServer(uvicorn.Config(
                app, log_level="warning", access_log=False, lifespan="off",
                timeout_graceful_shutdown=int(c.grace_seconds), limit_concurrency=None,
            ))
            log.info("REST listening on http://%s:%d", c.host, self.rest_port)

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

    def serve_forever(self) -> None:
        """Runs until SIGINT/SIGTERM, then shuts down gracefully."""
        self._prepare()
        # The loaded models and TensorFlow hold millions of long-lived objects; keeping them out of
        # the cyclic collector's passes keeps request-time collections short.
        gc.collect()
        gc.freeze()
        stop = threading.Event()

        def request_stop(signum, frame):
            log.info("Received signal %d: finishing requests in flight, then exiting", signum)
            stop.set()
            if self._uvicorn is not None:
                self._uvicorn.should_exit = True

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            if self._uvicorn is not None:
                self._uvicorn.run(sockets=[self._sock])  # returns after draining HTTP requests
            else:
                stop.wait()
        finally:
            self._shutdown_rest_free()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def stop(self) -> None:
        """Graceful stop: refuse new requests, finish those in flight, stop workers and polling."""
        if self._uvicorn is not None and self._thread is not None:
            self._uvicorn.should_exit = True
            self._thread.join(self.config.grace_seconds + 5)
        self._shutdown_rest_free()

    def _shutdown_rest_free(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=self.config.grace_seconds).wait()
            self._grpc = None
        self.core.close(self.config.grace_seconds)
        self.manager.stop()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def vertex_from_env(environ: dict[str, str] | None = None) -> tuple[VertexConfig, int, str]:
    """Vertex AI settings from `AIP_*` variables: (routes, HTTP port, model storage path)."""
    env = os.environ if environ is None else environ
    storage = env.get("AIP_STORAGE_URI", "")
    if not storage:
        raise ValueError("Vertex AI mode needs AIP_STORAGE_URI (the exported model's folder).")
    vertex = VertexConfig(
        model_name=env.get("AIP_DEPLOYED_MODEL_ID") or env.get("MODEL_NAME") or "model",
        health_route=env.get("AIP_HEALTH_ROUTE", "/health"),
        predict_route=env.get("AIP_PREDICT_ROUTE", "/predict"),
    )
    return vertex, int(env.get("AIP_HTTP_PORT", "8080")), storage
