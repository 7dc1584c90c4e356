"""Prometheus metrics of one server: TF Serving's own metric names, and ours.

TF Serving registers `/tensorflow/serving/request_count` (labels `model_name`, `status`: the
error code name, "OK" on success) and the histograms `/tensorflow/serving/request_latency`
(labels `model_name`, `API`, `entrypoint`: "GRPC" or "REST") and
`/tensorflow/serving/runtime_latency` (labels `model_name`, `API`, `runtime`), in microseconds with
exponential buckets 10 * 1.8^i (tensorflow_serving/servables/tensorflow/util.cc). Its Prometheus
exporter replaces every character outside `[a-zA-Z0-9_]` with `:`, so dashboards built for TF
Serving read `:tensorflow:serving:request_count` and `:tensorflow:serving:request_latency_bucket`.
Those are exported here under the same names, beside the `sr_tf_serving_*` metrics (seconds,
queue depth, batch sizes).
"""

from __future__ import annotations

import bisect
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Buckets::Exponential(10, 1.8, 33): 32 finite limits, then +Inf.
TFS_LATENCY_BUCKETS = tuple(10 * 1.8**i for i in range(32))
TFS_PREFIX = ":tensorflow:serving:"
API = "Predict"


class _TFServingMetrics:
    """TF Serving's request count and latency histograms, rendered with TF Serving's names."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        self._histograms: dict[str, dict[tuple[str, ...], list]] = {"request_latency": {}, "runtime_latency": {}}

    def count(self, model: str, status: str) -> None:
        with self._lock:
            self._counts[(model, status)] = self._counts.get((model, status), 0) + 1

    def observe(self, histogram: str, labels: tuple[str, str, str], micros: float) -> None:
        with self._lock:
            cell = self._histograms[histogram].setdefault(labels, [[0] * (len(TFS_LATENCY_BUCKETS) + 1), 0.0])
            cell[0][bisect.bisect_left(TFS_LATENCY_BUCKETS, micros)] += 1
            cell[1] += micros

    def render(self) -> str:
        """Prometheus text lines as TF Serving's exporter writes them (counter names without the
        `_total` suffix prometheus_client would add)."""
        with self._lock:
            counts = sorted(self._counts.items())
            histograms = {k: sorted((labels, ([*c[0]], c[1])) for labels, c in v.items())
                          for k, v in self._histograms.items()}
        name = TFS_PREFIX + "request_count"
        lines = [f"# HELP {name} The total number of requests.", f"# TYPE {name} counter"]
        lines += [f'{name}{{model_name="{_esc(m)}",status="{s}"}} {n}' for (m, s), n in counts]
        label_names = {"request_latency": ("model_name", "API", "entrypoint"),
                       "runtime_latency": ("model_name", "API", "runtime")}
        docs = {"request_latency": "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
                "runtime_latency": "Distribution of wall time (in microseconds) for Tensorflow runtime."}
        for hist, cells in histograms.items():
            name = TFS_PREFIX + hist
            lines += [f"# HELP {name} {docs[hist]}", f"# TYPE {name} histogram"]
            for labels, (buckets, total) in cells:
                base = ",".join(f'{k}="{_esc(v)}"' for k, v in zip(label_names[hist], labels, strict=True))
                cumulative = 0
                for limit, n in zip([*TFS_LATENCY_BUCKETS, float("inf")], buckets, strict=True):
                    cumulative += n
                    le = "+Inf" if limit == float("inf") else f"{limit:.6g}"
                    lines.append(f'{name}_bucket{{{base},le="{le}"}} {cumulative}')
                lines.append(f"{name}_sum{{{base}}} {total:.17g}")
                lines.append(f"{name}_count{{{base}}} {cumulative}")
        return "\n".join(lines) + "\n"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Prometheus metrics of one server (own registry, so several servers can run in a process)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.tf_serving = _TFServingMetrics()
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

    def exposition(self) -> bytes:
        """The Prometheus text page: TF Serving's metrics, then ours."""
        return self.tf_serving.render().encode() + generate_latest(self.registry)

    def observe(self, model: str, api: str, status: str, seconds: float) -> None:
        """One answered request. `api`: "grpc_predict", "rest_predict" or "vertex_predict"."""
        self.requests.labels(model, api, status).inc()
        self.latency.labels(model, api).observe(seconds)
        self.tf_serving.count(model, status)
        entrypoint = "GRPC" if api.startswith("grpc") else "REST"
        self.tf_serving.observe("request_latency", (model, API, entrypoint), seconds * 1e6)

    def observe_runtime(self, model: str, seconds: float) -> None:
        """One model call (a batch), as TF Serving's runtime_latency (runtime "TF2")."""
        self.tf_serving.observe("runtime_latency", (model, API, "TF2"), seconds * 1e6)
