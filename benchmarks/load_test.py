"""Load test: `sr-tf serve` in its own process, every client in a process of its own.

    python benchmarks/load_test.py                      # 64 clients for 60 s, then over the queue limit
    python benchmarks/load_test.py --clients 16 --seconds 20

Clients take turns in three kinds: REST row JSON (`{"instances": ...}`), REST b64 PNG (the
`encoded_image` signature) and gRPC Predict; every 8th round of three sends large images (160x160,
above `--large-request-pixels`), the others small ones (16x16). Each client's images are its own (seeded
by the client's index) and every answer is compared with the in-process SavedModel's output for
that very input, so a response that went to the wrong client, or a batch split in the wrong
place, is a mismatch. Two runs, each against a fresh server:

1. under the queue limit (`--max-enqueued` = clients, each client has one request in flight):
   every request must succeed;
2. over it (`--max-enqueued` far below the clients): the excess must be refused explicitly, HTTP 429
   with a JSON error or gRPC RESOURCE_EXHAUSTED, and every answered request must still be right.

Printed per run: requests, refusals, p50/p99 latency per kind and size (warm-up included), and the
server's resident memory (VmRSS from /proc) before the load, after a warm-up and at the end; the
growth from warm-up to the end must stay bounded. Measured with 64 clients: the allocators reach
their plateau within about 12 s (691 -> 880 MiB), then +26 MiB in the next 110 s; hence the 15 s
warm-up before the baseline. The clients never import TensorFlow's runtime (64 processes could not
each load it): the gRPC messages come from `tensorflow_serving.apis` alone (`serving_protos`).
tests/serving/test_load.py runs a short version of the same code.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import io
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import types
from pathlib import Path

import numpy as np

KINDS = ("rest_row", "rest_b64", "grpc")
MODEL = "load"


# --- client side (no TensorFlow) ----------------------------------------------------------
def serving_protos():
    """`(predict_pb2, prediction_service_pb2_grpc)` without running `tensorflow/__init__.py`.

    `tensorflow_serving.apis` imports its messages from `tensorflow.core.framework`, plain
    generated protobuf modules; importing them the normal way first loads all of TensorFlow
    (seconds and hundreds of MiB per process). An empty `tensorflow` package object whose path is
    the real one lets those modules import alone. Only for processes that never use TensorFlow.
    """
    if "tensorflow" not in sys.modules:
        spec = importlib.util.find_spec("tensorflow")
        stub = types.ModuleType("tensorflow")
        stub.__path__ = list(spec.submodule_search_locations)
        sys.modules["tensorflow"] = stub
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    return predict_pb2, prediction_service_pb2_grpc


@dataclasses.dataclass
class ClientSpec:
    """One client: its kind, its inputs and the output each must get back.

    `inputs` are float32 `[1, H, W, 3]` in [0, 255] (rest_row, grpc) or PNG bytes (rest_b64);
    `expected` the in-process outputs: float32 `[1, sH, sW, 3]`, or uint8 `[sH, sW, 3]` pixels."""

    index: int
    kind: str
    size: int
    inputs: list
    expected: list


def matches(actual: np.ndarray, desired: np.ndarray) -> str:
    """"" when `actual` is `desired` up to float32 rounding (whole-number pixels at most 1 apart, and
    rarely: < 0.1% of them), else what differs."""
    if actual.shape != desired.shape:
        return f"shape {actual.shape}, expected {desired.shape}"
    diff = np.abs(actual.astype(np.float64) - desired.astype(np.float64))
    if diff.max(initial=0) > 1 or np.mean(diff > 0) >= 1e-3:
        return f"max difference {diff.max():.0f}, {np.mean(diff > 0):.2%} of the values differ"
    return ""


class _Caller:
    """One request of one kind: `call(i) -> (outcome, detail)`, outcome "ok" | "refused" | "error"."""

    def __init__(self, spec: ClientSpec, rest_url: str, grpc_target: str):
        self.spec = spec
        if spec.kind == "grpc":
            import grpc

            predict_pb2, service = serving_protos()
            self._grpc = grpc
            self._channel = grpc.insecure_channel(grpc_target, options=[
                ("grpc.max_send_message_length", 1 << 30), ("grpc.max_receive_message_length", 1 << 30)])
            self._stub = service.PredictionServiceStub(self._channel)
            self._requests = []
            for x in spec.inputs:
                request = predict_pb2.PredictRequest()
                request.model_spec.name = MODEL
                tensor = request.inputs["images"]
                tensor.dtype = 1  # DT_FLOAT
                for d in x.shape:
                    tensor.tensor_shape.dim.add(size=d)
                tensor.tensor_content = x.astype("<f4").tobytes()
                self._requests.append(request)
        else:
            import base64

            import orjson
            import requests

            self._session = requests.Session()
            self._url = f"{rest_url}/v1/models/{MODEL}:predict"
            if spec.kind == "rest_row":
                self._bodies = [orjson.dumps({"instances": x}, option=orjson.OPT_SERIALIZE_NUMPY) for x in spec.inputs]
            else:
                self._bodies = [orjson.dumps({"signature_name": "encoded_image",
                                              "instances": [{"b64": base64.b64encode(png).decode()}]})
                                for png in spec.inputs]

    def call(self, i: int) -> tuple[str, str]:
        if self.spec.kind == "grpc":
            try:
                response = self._stub.Predict(self._requests[i], timeout=120)
            except self._grpc.RpcError as err:
                if err.code() == self._grpc.StatusCode.RESOURCE_EXHAUSTED:
                    return "refused", ""
                return "error", f"gRPC {err.code().name}: {err.details()}"
            t = response.outputs["upscaled"]
            shape = tuple(d.size for d in t.tensor_shape.dim)
            values = np.frombuffer(t.tensor_content, "<f4") if t.tensor_content else np.array(t.float_val, np.float32)
            return self._check(values.reshape(shape), i)
        r = self._session.post(self._url, data=self._bodies[i], timeout=120,
                               headers={"Content-Type": "application/json"})
        if r.status_code == 429 and r.headers.get("content-type") == "application/json" and r.json().get("error"):
            return "refused", ""
        if r.status_code != 200:
            return "error", f"REST {r.status_code}: {r.text[:200]}"
        import orjson

        predictions = orjson.loads(r.content)["predictions"]
        if self.spec.kind == "rest_row":
            return self._check(np.array(predictions, np.float32), i)
        import base64

        from PIL import Image

        return self._check(np.asarray(Image.open(io.BytesIO(base64.b64decode(predictions[0]["b64"])))), i)

    def _check(self, actual: np.ndarray, i: int) -> tuple[str, str]:
        problem = matches(actual, self.spec.expected[i])
        return ("ok", "") if not problem else ("error", f"client {self.spec.index} ({self.spec.kind}) got a "
                                                          f"response that is not its own: {problem}")


def _client_process(spec: ClientSpec, rest_url: str, grpc_target: str, ready, go, stop_at, results) -> None:
    import gc

    caller = _Caller(spec, rest_url, grpc_target)
    gc.collect()
    gc.freeze()  # what exists now is never collected again: the client's own pauses stay short
    ready.put(spec.index)
    go.wait()
    latencies, refused, errors, error_count, n = [], 0, [], 0, 0
    while time.monotonic() < stop_at.value:
        start = time.perf_counter()
        try:
            outcome, detail = caller.call(n % len(spec.inputs))
        except Exception as err:  # a dropped connection, a timeout: counted, never silent
            outcome, detail = "error", f"{type(err).__name__}: {err}"
        elapsed = time.perf_counter() - start
        n += 1
        if outcome == "ok":
            latencies.append(elapsed)
        elif outcome == "refused":
            refused += 1
        else:
            error_count += 1
            if len(errors) < 3:
                errors.append(detail)
    results.put({"index": spec.index, "kind": spec.kind, "size": spec.size, "latencies": latencies,
                 "refused": refused, "errors": errors, "error_count": error_count})


# --- the oracle and the server (parent side) -----------------------------------------------
def client_specs(version_dir: str | Path, clients: int, small: int = 16, large: int = 160,
                 large_every: int = 8) -> list[ClientSpec]:
    """`clients` specs, kinds in turn (rounds of three), every `large_every`-th round with `large`
    images, the others with `small` ones; two distinct random images each (seeded by the index),
    with the in-process SavedModel's outputs for them."""
    import tensorflow as tf
    from PIL import Image

    loaded = tf.saved_model.load(str(version_dir))
    pixels_fn, encoded_fn = loaded.signatures["serving_default"], loaded.signatures["encoded_image"]
    specs = []
    for c in range(clients):
        kind = KINDS[c % len(KINDS)]
        size = large if c // len(KINDS) % large_every == large_every - 1 else small
        inputs, expected = [], []
        for k in range(2):
            x = np.random.default_rng(1000 * c + k).integers(0, 256, (1, size, size, 3)).astype(np.float32)
            if kind == "rest_b64":
                buf = io.BytesIO()
                Image.fromarray(x[0].astype(np.uint8)).save(buf, format="PNG")
                out = encoded_fn(image_bytes=tf.constant([buf.getvalue()]))["upscaled_bytes"].numpy()[0]
                inputs.append(buf.getvalue())
                expected.append(np.asarray(Image.open(io.BytesIO(out))))
            else:
                inputs.append(x)
                expected.append(pixels_fn(images=tf.constant(x))["upscaled"].numpy())
        specs.append(ClientSpec(c, kind, size, inputs, expected))
    return specs


def rss_mib(pid: int) -> float:
    """Resident memory of a process (VmRSS in /proc/PID/status), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_available(url: str, model: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Returns once `url`'s status of `model` answers 200; raises if `proc` exits first (with its
    stderr's end, when piped) or `timeout` seconds pass."""
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"{url}/v1/models/{model}", timeout=2).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or busy loading
            pass
        if proc.poll() is not None:
            tail = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            raise RuntimeError(f"sr-tf serve exited {proc.returncode}: {tail}")
        if time.monotonic() > deadline:
            raise RuntimeError("sr-tf serve did not become ready")
        time.sleep(0.2)


@contextlib.contextmanager
def serve(model_base_path: str | Path, max_enqueued: int, extra: tuple[str, ...] = (), timeout: float = 120.0):
    """`python -m sr_tf serve` with batching and `--max-enqueued`, on free loopback ports; yields
    (process, REST URL, gRPC target) once the model's status answers 200."""

    rest, grpc_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sr_tf", "serve", "--model_name", MODEL, "--model_base_path", str(model_base_path),
         "--rest-port", str(rest), "--grpc-port", str(grpc_port), "--no-ui", "--enable_batching=true",
         "--max-enqueued", str(max_enqueued), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    url = f"http://127.0.0.1:{rest}"
    try:
        wait_until_available(url, MODEL, proc, timeout)
        yield proc, url, f"127.0.0.1:{grpc_port}"
    finally:
        proc.kill()
        proc.wait(30)


@dataclasses.dataclass
class LoadResult:
    """What one run measured. `latencies[(kind, size)]`: seconds of the answered requests."""

    seconds: float
    clients: int
    latencies: dict
    refused: dict
    errors: list
    error_count: int
    rss_before: float
    rss_warm: float
    rss_end: float
    rss_peak: float
    rss_samples: list  # (seconds since the start, MiB), every 0.25 s

    @property
    def ok(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    def table(self) -> str:
        lines = [f"{'kind':9s} {'size':>7s} {'ok':>6s} {'refused':>8s} {'p50 ms':>8s} {'p99 ms':>8s}"]
        for key in sorted(set(self.latencies) | set(self.refused), key=lambda k: (KINDS.index(k[0]), k[1])):
            lat = np.array(self.latencies.get(key, [])) * 1e3
            p50, p99 = (np.percentile(lat, 50), np.percentile(lat, 99)) if lat.size else (float("nan"),) * 2
            lines.append(f"{key[0]:9s} {key[1]:>3d}x{key[1]:<3d} {lat.size:6d} {self.refused.get(key, 0):8d} "
                         f"{p50:8.0f} {p99:8.0f}")
        lines.append(f"{self.ok} answered, {self.refused_total} refused, {self.error_count} errors in "
                     f"{self.seconds:.0f} s ({self.ok / self.seconds:.1f} requests/s); server RSS MiB: "
                     f"{self.rss_before:.0f} before, {self.rss_warm:.0f} after warm-up, {self.rss_end:.0f} at the end "
                     f"(peak {self.rss_peak:.0f})")
        step = max(1.0, self.seconds / 10)
        marks = [next(m for t, m in self.rss_samples if t >= k * step) for k in range(int(self.seconds / step) + 1)
                 if any(t >= k * step for t, _ in self.rss_samples)]
        lines.append(f"server RSS every {step:.0f} s: {' '.join(f'{m:.0f}' for m in marks)}")
        return "\n".join(lines)


def run_load(specs: list[ClientSpec], rest_url: str, grpc_target: str, server_pid: int, seconds: float,
             warmup_seconds: float = 2.0) -> LoadResult:
    """Runs one process per spec against the server for `warmup_seconds + seconds`; the latencies,
    refusals and errors cover the whole run, the RSS `rss_warm` is read once the warm-up is over."""
    ctx = multiprocessing.get_context("forkserver")  # fresh processes, forked from one that imported once
    ctx.set_forkserver_preload([__name__, "numpy", "requests", "orjson", "grpc", "PIL.Image"])
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    stop_at = ctx.Value("d", float("inf"))
    procs = [ctx.Process(target=_client_process, args=(s, rest_url, grpc_target, ready, go, stop_at, results),
                         daemon=True) for s in specs]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            ready.get(timeout=300)
        rss_before = rss_mib(server_pid)
        samples, stop_sampling = [(0.0, rss_before)], threading.Event()

        def sample():
            t0 = time.monotonic()
            while not stop_sampling.wait(0.25):
                samples.append((time.monotonic() - t0, rss_mib(server_pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stop_at.value = time.monotonic() + warmup_seconds + seconds
        go.set()
        time.sleep(warmup_seconds)
        rss_warm = rss_mib(server_pid)
        collected = []
        for _ in procs:
            collected.append(results.get(timeout=seconds + 300))
        rss_end = rss_mib(server_pid)
        stop_sampling.set()
        sampler.join()
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    latencies, refused, errors, error_count = {}, {}, [], 0
    for r in collected:
        key = (r["kind"], r["size"])
        latencies.setdefault(key, []).extend(r["latencies"])
        refused[key] = refused.get(key, 0) + r["refused"]
        errors.extend(r["errors"])
        error_count += r["error_count"]
    return LoadResult(warmup_seconds + seconds, len(specs), latencies, refused, errors, error_count,
                      rss_before, rss_warm, rss_end, max(max(m for _, m in samples), rss_end), samples)


def check_under_limit(result: LoadResult, max_growth_mib: float) -> list[str]:
    """What is wrong with a run under the queue limit ([] when nothing): any error or refusal, a
    kind or size that got no answer, memory growing past `max_growth_mib` after the warm-up."""
    problems = [f"{result.error_count} errors, e.g. {result.errors[:3]}"] if result.error_count else []
    if result.refused_total:
        problems.append(f"{result.refused_total} requests refused under the queue limit")
    problems += [f"no {k[0]} {k[1]}px request was answered" for k, v in result.latencies.items() if not v]
    growth = result.rss_end - result.rss_warm
    if growth > max_growth_mib:
        problems.append(f"server RSS grew by {growth:.0f} MiB after the warm-up (bound {max_growth_mib:.0f} MiB)")
    return problems


def check_over_limit(result: LoadResult) -> list[str]:
    """Over the limit: refusals happen (as 429 / RESOURCE_EXHAUSTED, the only failures allowed), and
    requests still get answered, correctly."""
    problems = [f"{result.error_count} errors, e.g. {result.errors[:3]}"] if result.error_count else []
    if not result.refused_total:
        problems.append("no request was refused over the queue limit")
    if not result.ok:
        problems.append("no request was answered over the queue limit")
    return problems


def export_tiny(base: Path) -> Path:
    """A small deterministic model (SRVGGNetCompact, 16 features, 2 convolutions, x2) at BASE/1."""
    import keras

    from sr_tf.export import ExportConfig, export_savedmodel
    from sr_tf.models import SRVGGNetCompact

    keras.utils.set_random_seed(0)
    model = SRVGGNetCompact(num_feat=16, num_conv=2, upscale=2)
    model(np.zeros((1, 4, 4, 3), np.float32))
    return export_savedmodel(model, base / "1", ExportConfig(tile_size=0, warmup_size=8))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60.0, help="the run under the limit (default: %(default)s)")
    parser.add_argument("--over-seconds", type=float, default=10.0, help="the run over it (default: %(default)s)")
    parser.add_argument("--over-limit", type=int, default=4, help="--max-enqueued of the second run")
    parser.add_argument("--warmup-seconds", type=float, default=15.0,
                        help="load before the RSS baseline is read (default: %(default)s)")
    parser.add_argument("--max-rss-growth-mib", type=float, default=64.0,
                        help="bound of the server's RSS growth from the warm-up's end to the run's (default: %(default)s)")
    args = parser.parse_args(argv)

    from machine import describe

    base = Path(tempfile.mkdtemp(prefix="sr-tf-load-")) / MODEL
    version = export_tiny(base)
    specs = client_specs(version, args.clients)
    failed = False
    for title, limit, seconds, warmup, check in (
            (f"under the queue limit (--max-enqueued {args.clients})", args.clients, args.seconds,
             args.warmup_seconds, lambda r: check_under_limit(r, args.max_rss_growth_mib)),
            (f"over the queue limit (--max-enqueued {args.over_limit})", args.over_limit, args.over_seconds, 2.0,
             check_over_limit)):
        with serve(base, limit) as (proc, url, target):
            result = run_load(specs, url, target, proc.pid, seconds, warmup)
        print(f"\n{args.clients} clients, {title}; model SRVGGNetCompact(16 feat, 2 conv, x2), "
              f"sr-tf serve --enable_batching=true in its own process")
        print(result.table())
        for problem in check(result):
            print("FAILED:", problem)
            failed = True
    print(describe())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
