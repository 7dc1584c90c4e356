"""The standard gRPC health service (`grpc.health.v1.Health`), behind TF Serving's
`--enable_grpc_healthcheck_service`, so Kubernetes gRPC probes and load balancers see the state.

Services reported: "" (the whole server) and each configured model by name. A model is SERVING
while it has a version in state AVAILABLE; the server ("") is SERVING only while every configured
model is. So it is NOT_SERVING while the models load, while a model's only version failed to load,
and, from SIGTERM on, for the rest of the grace period (`begin_shutdown`: the status never goes
back). `Check` answers at once, `Watch` streams every change. Unknown service names get NOT_FOUND
(Check) or SERVICE_UNKNOWN (Watch), as the protocol says.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading

from sr_tf.serving.errors import ServingError

log = logging.getLogger("sr_tf.serving")
OVERALL = ""  # the service name that stands for the whole server


class HealthReporter:
    """Keeps a grpcio-health-checking `HealthServicer` in step with a `ModelManager`.

    Args:
      manager: the models whose states are reported.
      interval: seconds between looks at the model states (a change shows within this time).
    """

    def __init__(self, manager, interval: float = 0.1):
        from grpc_health.v1 import health, health_pb2

        self.manager = manager
        self.interval = interval
        self._pb2 = health_pb2
        self._pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="sr-tf-health")
        self.servicer = health.HealthServicer(experimental_non_blocking=True, experimental_thread_pool=self._pool)
        self._stop = threading.Event()
        self._shutting_down = False
        self._last: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self.update()  # NOT_SERVING until the models load

    def add_to(self, server) -> None:
        """Registers the service on a gRPC server that has not started."""
        from grpc_health.v1 import health_pb2_grpc

        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, server)

    def model_available(self, name: str) -> bool:
        try:
            return any(state.state == "AVAILABLE" for _, state in self.manager.status(name))
        except ServingError:  # no version seen yet
            return False

    def statuses(self) -> dict[str, int]:
        """Service name -> `HealthCheckResponse.ServingStatus` as it is now."""
        serving, not_serving = self._pb2.HealthCheckResponse.SERVING, self._pb2.HealthCheckResponse.NOT_SERVING
        models = {name: serving if self.model_available(name) else not_serving for name in self.manager.model_names()}
        ok = not self._shutting_down and models and all(s == serving for s in models.values())
        return {OVERALL: serving if ok else not_serving, **models}

    def update(self) -> None:
        if self._shutting_down:
            return
        for service, status in self.statuses().items():
            if self._last.get(service) != status:
                self._last[service] = status
                self.servicer.set(service, status)
                log.info("Health of %r: %s", service or "(server)",
                         self._pb2.HealthCheckResponse.ServingStatus.Name(status))

    def start(self) -> None:
        def loop():
            while not self._stop.wait(self.interval):
                try:
                    self.update()
                except Exception:  # keep reporting
                    log.exception("Updating the gRPC health status failed")

        self._thread = threading.Thread(target=loop, name="sr-tf-health", daemon=True)
        self._thread.start()

    def begin_shutdown(self) -> None:
        """Everything NOT_SERVING from now on (SIGTERM: the grace period has begun)."""
        self._shutting_down = True
        self.servicer.enter_graceful_shutdown()
        log.info("Health: NOT_SERVING (shutting down)")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._pool.shutdown(wait=False)
