"""Serving overhead: a 64x64 -> 256x256 request via REST (JSON tensor), REST (b64 PNG) and gRPC,
against calling the same SavedModel in-process, in one run.

    python benchmarks/serving.py                       # SRVGGNetCompact x4, published size, random weights
    python benchmarks/serving.py --model my.keras --iterations 50

The embedded server (`sr-tf serve`) runs as a separate process on loopback ports, as a deployment
would; client time (encoding the request, decoding the reply) is included. Ratios are each path's
median latency over the in-process median of the same work (tensor signature for JSON and gRPC,
encoded-image signature for b64 PNG). Targets: <= 1.15 for REST JSON, <= 1.05 for gRPC and b64.
The JSON floor is the JSON work any REST server and client must do for the same call, timed
in-process with orjson; REST JSON's overhead over in-process should stay within 1.2x of it.
The server's codec (sr-tf's TF Serving JSON parse, checks and write) is timed on the same bytes
against the server's half of that floor.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from load_test import free_port, wait_until_available  # the benchmarks' one server start-up wait


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, all threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_call(fn, n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="catalogue name or .keras file (default: SRVGGNetCompact 64 feat, 16 convs, x4)")
    parser.add_argument("--size", type=int, default=64, help="input edge in pixels (default: %(default)s)")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)

    import tensorflow as tf
    from PIL import Image

    from sr_tf.export import ExportConfig, export_savedmodel
    from sr_tf.models import SRVGGNetCompact
    from sr_tf.runtime import load_generator
    from sr_tf.serving.clients import GrpcClient, RestClient
    from sr_tf.serving.codec import gc_paused

    if args.model:
        model, label = load_generator(args.model), args.model
    else:
        import keras

        keras.utils.set_random_seed(0)
        model, label = SRVGGNetCompact(num_feat=64, num_conv=16, upscale=4), "SRVGGNetCompact(64 feat, 16 conv, x4)"
    workdir = Path(tempfile.mkdtemp(prefix="sr-tf-bench-"))
    version = export_savedmodel(model, workdir / "bench" / "1", ExportConfig())
    rest_port, grpc_port = free_port(), free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "sr_tf", "serve", "--model-base-path", str(workdir / "bench"),
         "--rest-port", str(rest_port), "--grpc-port", str(grpc_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    try:
        url = f"http://127.0.0.1:{rest_port}"
        wait_until_available(url, "bench", server)

        loaded = tf.saved_model.load(str(version))
        pixels_fn, encoded_fn = loaded.signatures["serving_default"], loaded.signatures["encoded_image"]
        x = np.random.default_rng(0).integers(0, 256, (1, args.size, args.size, 3)).astype(np.float32)
        buf = io.BytesIO()
        Image.fromarray(x[0].astype(np.uint8)).save(buf, format="PNG")
        png = buf.getvalue()
        rest, grpc_client = RestClient(url, "bench"), GrpcClient(f"127.0.0.1:{grpc_port}", "bench")

        def in_process_tensor():
            return pixels_fn(images=tf.constant(x))["upscaled"].numpy()

        def in_process_png():
            return encoded_fn(image_bytes=tf.constant([png]))["upscaled_bytes"].numpy()[0]

        reference = in_process_tensor()
        assert np.abs(rest.predict(x) - reference).max() <= 1
        assert np.abs(grpc_client.predict(x) - reference).max() <= 1
        assert base64.b64encode(rest.upscale_image(png))  # the b64 path answers

        import orjson

        # The floor moves the bytes the protocol puts on the wire: float tensors both ways, whole
        # numbers written "217.0" (TF Serving's WriteDecimal; orjson writes float32 that way).
        request_body = orjson.dumps({"inputs": x}, option=orjson.OPT_SERIALIZE_NUMPY)
        response_body = orjson.dumps({"outputs": reference}, option=orjson.OPT_SERIALIZE_NUMPY)
        import requests

        served = requests.post(f"{url}/v1/models/bench:predict", data=request_body, timeout=60).content
        assert served == response_body, "the floor's response must be the bytes the server sends"

        def server_floor():  # read the request, write the response
            with gc_paused():
                np.asarray(orjson.loads(request_body)["inputs"], np.float32)
                return orjson.dumps({"outputs": reference}, option=orjson.OPT_SERIALIZE_NUMPY)

        def client_floor():  # write the request, read the response into float32
            with gc_paused():
                orjson.dumps({"inputs": x}, option=orjson.OPT_SERIALIZE_NUMPY)
                return np.array(orjson.loads(response_body)["outputs"], np.float32)

        from sr_tf.serving import codec

        signature_inputs = {"input": codec.TensorInfo(np.dtype(np.float32), [None, None, None, 3])}

        def server_codec():  # the same work through sr-tf's TF Serving codec (checks, error texts, WriteDecimal)
            parsed = codec.loads(request_body, 10**9)
            codec.parse_predict_request(parsed, signature_inputs, b"true" in request_body)
            return codec.format_predict_response({"output": reference}, "columnar")

        assert server_codec() == response_body, "the codec must write the bytes the server sends"

        def json_floor():
            """The JSON work no REST path can avoid, with the fastest library (orjson)."""
            server_floor()
            return client_floor()

        runs = {
            "JSON floor (orjson, in-process)": json_floor,
            "in-process SavedModel (tensor)": in_process_tensor,
            "REST JSON tensor": lambda: rest.predict(x),
            "gRPC tensor": lambda: grpc_client.predict(x),
            "in-process SavedModel (PNG bytes)": in_process_png,
            "REST b64 PNG": lambda: rest.upscale_image(png),
        }
        # round-robin: one call of each path per round, so swings in machine load hit every path alike
        results = {name: [] for name in runs}
        for _ in range(args.warmup):
            for fn in runs.values():
                fn()
        for _ in range(args.iterations):
            for name, fn in runs.items():
                start = time.perf_counter()
                fn()
                results[name].append(time.perf_counter() - start)
        # CPU seconds per call, which machine load does not inflate: the server process's own
        # (from /proc) and this client's, against the model's and each side's JSON floor.
        n = max(args.iterations // 2, 5)
        cpu = {
            "model (in-process)": cpu_per_call(in_process_tensor, n),
            "server JSON floor": cpu_per_call(server_floor, n),
            "client JSON floor": cpu_per_call(client_floor, n),
        }
        # The codec against the floor in wall time, alternating, with no TensorFlow call between them:
        # CPU time of this process would also count TensorFlow's threads still spinning after a model call.
        codec_times = {"floor": [], "codec": []}
        for _ in range(3 * args.iterations):
            for key, fn in (("floor", server_floor), ("codec", server_codec)):
                start = time.perf_counter()
                fn()
                codec_times[key].append(time.perf_counter() - start)
        server_before, client_before = process_cpu(server.pid), time.process_time()
        for _ in range(n):
            rest.predict(x)
        cpu["server process, REST JSON"] = (process_cpu(server.pid) - server_before) / n
        cpu["client, REST JSON"] = (time.process_time() - client_before) / n
    finally:
        server.terminate()
        server.wait(60)

    from machine import describe

    s = args.size
    print(describe())
    print(f"model: {label}; request {s}x{s} -> {4 * s}x{4 * s}; {args.iterations} timed calls each "
          f"(round-robin), {os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}; "
          "server: sr-tf serve (separate process, loopback)")
    print(f"{'path':36s} {'median ms':>10s} {'mean ms':>9s} {'ratio':>7s}  target")
    base_tensor = statistics.median(results["in-process SavedModel (tensor)"])
    base_png = statistics.median(results["in-process SavedModel (PNG bytes)"])
    targets = {"REST JSON tensor": (base_tensor, 1.15), "gRPC tensor": (base_tensor, 1.05),
               "REST b64 PNG": (base_png, 1.05)}
    for name, times in results.items():
        med, mean = statistics.median(times) * 1e3, statistics.mean(times) * 1e3
        if name.startswith("JSON floor"):
            print(f"{name:36s} {med:10.1f} {mean:9.1f}")
        elif name in targets:
            base, target = targets[name]
            ratio = statistics.median(times) / base
            verdict = "met" if ratio <= target else "NOT met"
            print(f"{name:36s} {med:10.1f} {mean:9.1f} {ratio:7.3f}  <= {target:.2f} {verdict}")
        else:
            print(f"{name:36s} {med:10.1f} {mean:9.1f} {1.0:7.3f}  (baseline)")
    own = cpu["server process, REST JSON"] - cpu["model (in-process)"]
    print("CPU ms per call: " + ", ".join(f"{k} {v * 1e3:.1f}" for k, v in cpu.items()))
    print(f"server's own CPU (server process minus the model) {own * 1e3:.1f} ms = "
          f"{own / cpu['server JSON floor']:.2f}x the server's JSON floor; target <= 1.20 "
          f"{'met' if own <= 1.2 * cpu['server JSON floor'] else 'NOT met'}")
    codec_ms, floor_ms = (statistics.median(codec_times[k]) * 1e3 for k in ("codec", "floor"))
    print(f"server codec (sr-tf's parse + checks + write, in-process, median wall) {codec_ms:.2f} ms = "
          f"{codec_ms / floor_ms:.2f}x the server's JSON floor ({floor_ms:.2f} ms); target <= 1.20 "
          f"{'met' if codec_ms <= 1.2 * floor_ms else 'NOT met'}")
    overhead = statistics.median(results["REST JSON tensor"]) - base_tensor
    floor = statistics.median(results["JSON floor (orjson, in-process)"])
    print(f"REST JSON overhead {overhead * 1e3:.1f} ms = {overhead / floor:.2f}x the JSON floor "
          f"({floor * 1e3:.1f} ms); target <= 1.20 {'met' if overhead <= 1.2 * floor else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
