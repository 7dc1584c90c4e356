"""`sr-tf serve`: the embedded server with TensorFlow Serving's REST and gRPC protocol."""

from __future__ import annotations

import argparse
import logging
import os
import sys

HELP = "Serve exported SavedModels over TF Serving's REST and gRPC APIs (binds 127.0.0.1 by default)."


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("models")
    src.add_argument("--model-base-path", help="BASE/NAME folder with integer version directories")
    src.add_argument("--model-name", help="name in URLs (default: the base path's folder name)")
    src.add_argument("--model-config-file", help="TF Serving model_config_list text proto (several models, labels)")
    src.add_argument("--file-system-poll-wait-seconds", type=float, default=1.0,
                     help="how often base paths are scanned for new versions; 0 = never (default: %(default)s)")
    src.add_argument("--no-warmup", action="store_true", help="skip assets.extra warmup requests")
    net = p.add_argument_group("network")
    net.add_argument("--host", default="127.0.0.1",
                     help="interface to bind; 0.0.0.0 accepts other machines (default: %(default)s)")
    net.add_argument("--rest-port", type=int, default=8501, help="REST port; -1 = off (default: %(default)s)")
    net.add_argument("--grpc-port", type=int, default=8500, help="gRPC port; -1 = off (default: %(default)s)")
    net.add_argument("--vertex", action="store_true",
                     help="Vertex AI custom container: model from AIP_STORAGE_URI, REST on AIP_HTTP_PORT, "
                          "health/predict on AIP_HEALTH_ROUTE/AIP_PREDICT_ROUTE")
    lim = p.add_argument_group("limits and batching")
    lim.add_argument("--max-request-bytes", type=int, default=32 * 1024 * 1024,
                     help="largest REST body; larger ones get 413 (default: %(default)s)")
    lim.add_argument("--max-pixels", type=int, default=4096 * 4096,
                     help="most input pixels per request; more get 400 (default: %(default)s)")
    lim.add_argument("--request-timeout-seconds", type=float, default=300.0,
                     help="answer 504 / DEADLINE_EXCEEDED to requests not done by then (default: %(default)s)")
    lim.add_argument("--enable-batching", action="store_true", help="join concurrent same-shape requests")
    lim.add_argument("--batching-parameters-file", help="TF Serving BatchingParameters text proto")
    lim.add_argument("--max-batch-size", type=int, default=8, help="(default: %(default)s)")
    lim.add_argument("--batch-timeout-micros", type=int, default=2000, help="(default: %(default)s)")
    lim.add_argument("--num-batch-threads", type=int, default=2, help="(default: %(default)s)")
    lim.add_argument("--max-enqueued", type=int, default=64,
                     help="requests waiting or running before new ones get 429 (default: %(default)s)")
    lim.add_argument("--monitoring-config-file", help="TF Serving MonitoringConfig text proto (Prometheus path)")
    lim.add_argument("--grace-seconds", type=float, default=30.0,
                     help="longest wait for in-flight requests at shutdown (default: %(default)s)")


def _configs(args):
    from sr_tf.serving.models import ModelConfig, parse_model_config_file

    if args.model_config_file:
        if args.model_base_path:
            raise ValueError("Give --model-base-path or --model-config-file, not both.")
        return parse_model_config_file(args.model_config_file)
    if not args.model_base_path:
        raise ValueError("Give --model-base-path BASE/NAME or --model-config-file FILE.")
    base = args.model_base_path.rstrip("/")
    return [ModelConfig(args.model_name or os.path.basename(base) or "model", base)]


def run(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from sr_tf.serving.batching import BatchingConfig, parse_batching_parameters
    from sr_tf.serving.models import ModelConfig
    from sr_tf.serving.protos import parse_text
    from sr_tf.serving.rest import METRICS_PATH
    from sr_tf.serving.server import ModelServer, ServerConfig, vertex_from_env
    from sr_tf.serving.service import Limits

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        vertex, rest_port = None, args.rest_port
        if args.vertex:
            vertex, rest_port, storage = vertex_from_env()
            configs = [ModelConfig(vertex.model_name, storage)]
            if args.host == "127.0.0.1":
                logging.warning("Vertex AI reaches the container from outside: pass --host 0.0.0.0")
        else:
            configs = _configs(args)
        batching = BatchingConfig(
            enabled=args.enable_batching, max_batch_size=args.max_batch_size,
            batch_timeout_micros=args.batch_timeout_micros, num_batch_threads=args.num_batch_threads,
            max_enqueued=args.max_enqueued,
        )
        if args.batching_parameters_file:
            batching = parse_batching_parameters(Path(args.batching_parameters_file).read_text(), enabled=True)
        metrics_path = METRICS_PATH
        if args.monitoring_config_file:
            mon = parse_text("MonitoringConfig", Path(args.monitoring_config_file).read_text())
            enabled = mon.prometheus_config.enable
            metrics_path = (mon.prometheus_config.path or METRICS_PATH) if enabled else None
        config = ServerConfig(
            host=args.host,
            rest_port=None if rest_port < 0 else rest_port,
            grpc_port=None if args.grpc_port < 0 else args.grpc_port,
            limits=Limits(max_request_bytes=args.max_request_bytes, max_pixels=args.max_pixels,
                          timeout_seconds=args.request_timeout_seconds),
            batching=batching,
            poll_seconds=args.file_system_poll_wait_seconds,
            warmup=not args.no_warmup,
            metrics_path=metrics_path,
            vertex=vertex,
            grace_seconds=args.grace_seconds,
        )
    except (ValueError, OSError) as err:
        print(f"sr-tf serve: {err}", file=sys.stderr)
        return 2
    logging.info("Serving %s", ", ".join(f"{c.name} from {c.base_path}" for c in configs))
    logging.info("Settings: %s", {k: v for k, v in dataclasses.asdict(config).items() if k != "vertex"})
    ModelServer(configs, config).serve_forever()
    return 0
