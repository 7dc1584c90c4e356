"""`sr-tf serve`: the embedded server with TensorFlow Serving's REST and gRPC protocol.

It takes `tensorflow_model_server`'s own flags with the same names and meanings (so one command
line or Kubernetes manifest works for both servers), the earlier dashed spellings as aliases, and
a few flags of its own (`--model`, `--host`, `--vertex`, limits, `--no-ui`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from sr_tf.serving.limits import Limits

HELP = "Serve a model over TF Serving's REST and gRPC APIs (binds 127.0.0.1 by default)."

# tensorflow_model_server's flags (tensorflow_serving/model_servers/main.cc of the version the
# Dockerfile pins, 2.21). Every one is accepted here; IMPLEMENTED ones act as in TF Serving,
# NO_EFFECT ones are accepted and only warn when set (they tune parts this server does not have),
# REFUSED ones would silently change security or what is served, so they stop the server.
TF_SERVING_FLAGS = (
    "port", "grpc_socket_path", "rest_api_port", "rest_api_num_threads", "rest_api_timeout_in_ms",
    "rest_api_enable_cors_support", "enable_batching", "allow_version_labels_for_unavailable_models",
    "batching_parameters_file", "enable_per_model_batching_parameters", "model_config_file",
    "model_config_file_poll_wait_seconds", "model_name", "model_base_path", "num_load_threads",
    "num_unload_threads", "max_num_load_retries", "load_retry_interval_micros",
    "file_system_poll_wait_seconds", "flush_filesystem_caches", "tensorflow_session_parallelism",
    "tensorflow_session_config_file", "tensorflow_intra_op_parallelism", "tensorflow_inter_op_parallelism",
    "use_alts_credentials", "ssl_config_file", "platform_config_file", "per_process_gpu_memory_fraction",
    "saved_model_tags", "grpc_channel_arguments", "grpc_max_threads", "enable_model_warmup",
    "num_request_iterations_for_warmup", "version", "monitoring_config_file",
    "remove_unused_fields_from_bundle_metagraph", "prefer_tflite_model", "num_tflite_pools",
    "num_tflite_interpreters_per_pool", "enable_signature_method_name_check", "xla_cpu_compilation_enabled",
    "xla_gpu_compilation_enabled", "enable_profiler", "thread_pool_factory_config_file", "mixed_precision",
    "skip_initialize_tpu", "enable_grpc_healthcheck_service", "enable_serialization_as_tensor_content",
)
NO_EFFECT = (
    "allow_version_labels_for_unavailable_models", "num_load_threads",
    "num_unload_threads", "flush_filesystem_caches", "tensorflow_session_config_file",
    "per_process_gpu_memory_fraction", "remove_unused_fields_from_bundle_metagraph", "prefer_tflite_model",
    "num_tflite_pools", "num_tflite_interpreters_per_pool", "enable_signature_method_name_check",
    "xla_cpu_compilation_enabled", "xla_gpu_compilation_enabled", "enable_profiler",
    "thread_pool_factory_config_file", "mixed_precision", "skip_initialize_tpu",
)
REFUSED = ("use_alts_credentials", "platform_config_file")
AIP_VARIABLES = ("AIP_HTTP_PORT", "AIP_STORAGE_URI", "AIP_PREDICT_ROUTE", "AIP_HEALTH_ROUTE")


def _bool(text: str) -> bool:
    """TF Serving's bool flag values: --flag, --flag=true/false/1/0."""
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false. Received: {text!r}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    def flag(name, *aliases, kind=None, **kwargs):
        """A TF Serving flag `--name` (plus aliases); kind=bool takes --name or --name=true|false."""
        if kind is bool:
            kwargs.update(type=_bool, nargs="?", const=True, metavar="true|false")
        elif kind is not None:
            kwargs["type"] = kind
        return p.add_argument(f"--{name}", *aliases, dest=name, **kwargs)

    src = p.add_argument_group("models (TF Serving flags; dashed spellings are aliases)")
    src.add_argument("--model", help="serve this model in one command: a catalogue name (sr-tf models), a "
                                     ".keras file or PyTorch checkpoint (exported once to the cache) or a SavedModel directory")
    flag("model_base_path", "--model-base-path", help="BASE/NAME folder with integer version directories")
    flag("model_name", "--model-name", help="name in URLs (default: the model's or folder's name)")
    flag("model_config_file", "--model-config-file",
         help="TF Serving model_config_list text proto (several models, version policies, labels)")
    flag("model_config_file_poll_wait_seconds", kind=float, default=0.0,
         help="re-read --model_config_file this often; 0 = read once (default: %(default)s)")
    flag("file_system_poll_wait_seconds", "--file-system-poll-wait-seconds", kind=float, default=1.0,
         help="how often base paths are scanned for new versions; 0 = once (default: %(default)s)")
    flag("max_num_load_retries", kind=int, default=5,
         help="further attempts to load a version that failed (default: %(default)s)")
    flag("load_retry_interval_micros", kind=int, default=60_000_000,
         help="microseconds between load attempts (default: %(default)s)")
    flag("enable_model_warmup", kind=bool, default=True, help="replay assets.extra warmup requests (default: true)")
    p.add_argument("--no-warmup", dest="enable_model_warmup", action="store_false", help="= --enable_model_warmup=false")
    flag("num_request_iterations_for_warmup", kind=int, default=1,
         help="replays of each warmup request (default: %(default)s)")
    flag("saved_model_tags", default="serve", help="comma-separated MetaGraph tags to load (default: %(default)s)")

    net = p.add_argument_group("network")
    flag("port", "--grpc-port", kind=int, default=8500, help="gRPC port; 0 = off (default: %(default)s)")
    flag("grpc_socket_path", help="also serve gRPC on this UNIX socket")
    flag("rest_api_port", "--rest-port", kind=int, default=8501,
         help="REST port; 0 = off (default: %(default)s, as in the tensorflow/serving image)")
    flag("rest_api_num_threads", kind=int, help="threads decoding and encoding REST JSON (default: automatic)")
    flag("rest_api_timeout_in_ms", kind=int, default=30_000,
         help="a request not answered by then gets 504 / DEADLINE_EXCEEDED (default: %(default)s)")
    p.add_argument("--request-timeout-seconds", type=float, dest="request_timeout_seconds",
                   help="the same in seconds (overrides --rest_api_timeout_in_ms)")
    flag("rest_api_enable_cors_support", kind=bool, default=False, help="add CORS headers (default: false)")
    flag("enable_serialization_as_tensor_content", kind=bool, default=False,
         help="gRPC Predict responses pack values in tensor_content instead of float_val etc. (default: false)")
    flag("grpc_channel_arguments", default="", help="gRPC server arguments, e.g. grpc.max_connection_age_ms=2000")
    flag("grpc_max_threads", kind=int, default=16, help="gRPC handler threads (default: %(default)s)")
    flag("enable_grpc_healthcheck_service", kind=bool, default=False,
         help="serve grpc.health.v1.Health: SERVING while every model has an AVAILABLE version (default: false)")
    flag("ssl_config_file", help="SSLConfig text proto (server_key, server_cert, custom_ca, client_verify: PEM "
                                 "contents): gRPC speaks TLS only, with client certificates required when client_verify")
    net.add_argument("--rest-api-tls", dest="rest_api_tls", action="store_true",
                     help="serve REST over HTTPS with --ssl_config_file too (sr-tf only: TF Serving's REST has no TLS)")
    net.add_argument("--host", help="interface to bind; 0.0.0.0 accepts other machines "
                                    "(default: 127.0.0.1; 0.0.0.0 in Vertex AI mode)")
    net.add_argument("--vertex", action="store_true",
                     help="Vertex AI custom container (also on when AIP_* variables are set): REST on 0.0.0.0:"
                          "AIP_HTTP_PORT, routes AIP_HEALTH_ROUTE / AIP_PREDICT_ROUTE, model from AIP_STORAGE_URI")
    net.add_argument("--no-ui", dest="ui", action="store_false",
                     help="do not serve the web page at / (it is always off in Vertex AI mode)")

    lim = p.add_argument_group("limits and batching")
    lim.add_argument("--max-request-bytes", type=int, default=Limits.max_request_bytes,
                     help="largest REST body or gRPC message; larger get 413 (default: %(default)s)")
    lim.add_argument("--max-pixels", type=int, default=Limits.max_pixels,
                     help="most input pixels per request, read from shapes and image headers; more get 400 "
                          "(default: %(default)s)")
    lim.add_argument("--max-json-values", type=int, default=Limits.max_json_values,
                     help="most values in a REST JSON body, counted before parsing (default: %(default)s)")
    flag("enable_batching", "--enable-batching", kind=bool, default=False,
         help="join concurrent requests whose images have the same size (default: false)")
    flag("batching_parameters_file", "--batching-parameters-file",
         help="TF Serving BatchingParameters text proto (implies --enable_batching)")
    flag("enable_per_model_batching_parameters", kind=bool, default=False,
         help="with --enable_batching: a model version's own VERSION/batching_params.pbtxt (sr-tf export "
              "--batching) sets its batch size, timeout and queue instead of the server-wide values; a "
              "version without one is not batched; the batch threads stay the server's (default: false)")
    lim.add_argument("--max-batch-size", type=int, default=8, help="(default: %(default)s)")
    lim.add_argument("--batch-timeout-micros", type=int, default=2000, help="(default: %(default)s)")
    lim.add_argument("--num-batch-threads", type=int, default=2, help="(default: %(default)s)")
    lim.add_argument("--max-enqueued", type=int, default=64,
                     help="requests waiting or running before new ones get 429 (default: %(default)s)")
    lim.add_argument("--large-request-pixels", type=int, default=128 * 128,
                     help="requests with more input pixels never take the last free batch thread, so small "
                          "requests are not starved by large ones; 0 = off (default: %(default)s)")
    flag("monitoring_config_file", "--monitoring-config-file",
         help="TF Serving MonitoringConfig text proto (Prometheus path)")
    lim.add_argument("--request-log-file-bytes", type=int, default=64 << 20,
                     help="request logs (a model's logging_config) start a new file at this size (default: %(default)s)")
    lim.add_argument("--grace-seconds", type=float, default=30.0,
                     help="at shutdown, requests still running after this get 503 (default: %(default)s)")
    for name in ("tensorflow_session_parallelism", "tensorflow_intra_op_parallelism",
                 "tensorflow_inter_op_parallelism"):
        flag(name, kind=int, default=0, help="TensorFlow threads; 0 = automatic")
    flag("version", kind=bool, default=False, help="print the version and exit")
    for name in REFUSED + NO_EFFECT:
        flag(name, help=argparse.SUPPRESS)


def _vertex_mode(args) -> bool:
    return bool(args.vertex) or any(os.environ.get(v) for v in AIP_VARIABLES)


def _model_configs(args, vertex):
    """The models to serve, from --model, --model_base_path, --model_config_file or AIP_STORAGE_URI."""
    from sr_tf.serving.model_config import ModelConfig, parse_model_config_file, resolve_model

    given = [f for f, v in (("--model", args.model), ("--model_base_path", args.model_base_path),
                            ("--model_config_file", args.model_config_file)) if v]
    if len(given) > 1:
        raise ValueError(f"Give one of --model, --model_base_path and --model_config_file. Received: {', '.join(given)}")
    if args.model_config_file:
        return parse_model_config_file(args.model_config_file)  # the manager warns of paths that serve nothing
    if args.model:
        return [resolve_model(args.model, name=args.model_name)]
    base = args.model_base_path
    if not base and vertex is not None:
        base = vertex.storage_uri
    if not base:
        raise ValueError("Give --model NAME|FILE.keras|SAVEDMODEL_DIR, --model_base_path BASE/NAME or "
                         "--model_config_file FILE.")
    base = base.rstrip("/")
    name = args.model_name or (vertex.model_name if vertex is not None else os.path.basename(base)) or "model"
    return [ModelConfig(name, base)]


def _check_flags(args) -> None:
    if args.version:
        return
    refused = [f"--{f}" for f in REFUSED if getattr(args, f)]
    if refused:
        raise ValueError(f"{', '.join(refused)}: not supported by sr-tf serve (use tensorflow_model_server "
                         "for TLS/ALTS or other platforms)")
    for name in NO_EFFECT:
        if getattr(args, name):
            logging.warning("--%s has no effect in sr-tf serve", name)


def _grpc_channel_arguments(text: str) -> tuple[tuple[str, object], ...]:
    """TF Serving's "k=v,k=v" (integers as ints, as TF Serving passes them)."""
    out = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--grpc_channel_arguments: expected key=value items. Received: {item!r}")
        out.append((key, int(value) if value.lstrip("-").isdigit() else value))
    return tuple(out)


def _server_config(args, vertex):
    """A `ServerConfig` from the flags (TF Serving's and ours)."""
    from pathlib import Path

    from sr_tf.serving.batching import BatchingConfig, parse_batching_parameters
    from sr_tf.serving.protos import parse_text
    from sr_tf.serving.rest import METRICS_PATH
    from sr_tf.serving.server import ServerConfig

    batching = BatchingConfig(
        enabled=bool(args.enable_batching), max_batch_size=args.max_batch_size,
        batch_timeout_micros=args.batch_timeout_micros, num_batch_threads=args.num_batch_threads,
        max_enqueued=args.max_enqueued, large_request_pixels=args.large_request_pixels,
    )
    if args.batching_parameters_file:
        batching = parse_batching_parameters(Path(args.batching_parameters_file).read_text(), True, batching)
    per_model = bool(args.enable_per_model_batching_parameters)
    if per_model and not batching.enabled:  # TF Serving: "only applicable when --enable_batching flag is set"
        logging.warning("--enable_per_model_batching_parameters has no effect without --enable_batching")
        per_model = False
    metrics_path = METRICS_PATH
    if args.monitoring_config_file:
        mon = parse_text("MonitoringConfig", Path(args.monitoring_config_file).read_text())
        enabled = mon.prometheus_config.enable
        metrics_path = (mon.prometheus_config.path or METRICS_PATH) if enabled else None
    timeout = args.request_timeout_seconds or args.rest_api_timeout_in_ms / 1000
    rest_port, grpc_port, host = args.rest_api_port, args.port, args.host or "127.0.0.1"
    if vertex is not None:
        rest_port, host = vertex.port, args.host or "0.0.0.0"
        if "--port" not in sys.argv and "--grpc-port" not in sys.argv:
            grpc_port = 0  # Vertex AI routes HTTP only
    return ServerConfig(
        host=host,
        rest_port=rest_port if rest_port > 0 else None,
        grpc_port=grpc_port if grpc_port > 0 else None,
        grpc_socket_path=args.grpc_socket_path or None,
        limits=Limits(max_request_bytes=args.max_request_bytes, max_pixels=args.max_pixels,
                      max_json_values=args.max_json_values, timeout_seconds=timeout),
        batching=batching,
        per_model_batching=per_model,
        poll_seconds=max(0.0, args.file_system_poll_wait_seconds),
        warmup=bool(args.enable_model_warmup),
        warmup_iterations=args.num_request_iterations_for_warmup,
        saved_model_tags=tuple(t.strip() for t in args.saved_model_tags.split(",") if t.strip()),
        load_retries=args.max_num_load_retries,
        load_retry_interval=args.load_retry_interval_micros / 1e6,
        metrics_path=metrics_path,
        vertex=vertex.routes if vertex is not None else None,
        grace_seconds=args.grace_seconds,
        grpc_workers=args.grpc_max_threads,
        grpc_options=_grpc_channel_arguments(args.grpc_channel_arguments),
        rest_threads=args.rest_api_num_threads,
        cors=bool(args.rest_api_enable_cors_support),
        tensor_content=bool(args.enable_serialization_as_tensor_content),
        ui=bool(args.ui) and vertex is None,
        model_config_file=args.model_config_file,
        model_config_poll_seconds=args.model_config_file_poll_wait_seconds,
        tls=_tls(args),
        grpc_health=bool(args.enable_grpc_healthcheck_service),
        request_log_file_bytes=args.request_log_file_bytes,
    )


def _tls(args):
    """The TLS settings of --ssl_config_file (and --rest-api-tls), or None."""
    if args.rest_api_tls and not args.ssl_config_file:
        raise ValueError("--rest-api-tls needs --ssl_config_file (the key and certificate to serve)")
    if not args.ssl_config_file:
        return None
    from sr_tf.serving.tls import parse_ssl_config_file

    try:
        return parse_ssl_config_file(args.ssl_config_file, rest=bool(args.rest_api_tls))
    except OSError as err:
        raise ValueError(f"--ssl_config_file: cannot read {args.ssl_config_file} ({err.strerror})") from None
    except ValueError as err:
        raise ValueError(f"--ssl_config_file {args.ssl_config_file}: {err}") from None


def _set_tensorflow_threads(args) -> None:
    intra = args.tensorflow_intra_op_parallelism or args.tensorflow_session_parallelism
    inter = args.tensorflow_inter_op_parallelism or args.tensorflow_session_parallelism
    if intra or inter:
        import tensorflow as tf

        if intra:
            tf.config.threading.set_intra_op_parallelism_threads(intra)
        if inter:
            tf.config.threading.set_inter_op_parallelism_threads(inter)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.version:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"sr-tf serve {version('sr-tf')} (TensorFlow Serving API compatible)")
        except PackageNotFoundError:
            print("sr-tf serve (TensorFlow Serving API compatible)")
        return 0
    from sr_tf.serving.server import PortInUseError, check_ports_free, vertex_from_env

    try:
        _check_flags(args)
        vertex = vertex_from_env(require_storage=not (args.model or args.model_base_path or args.model_config_file)) \
            if _vertex_mode(args) else None
        config = _server_config(args, vertex)
        # a busy port is reported now, before TensorFlow loads anything
        check_ports_free(config.host, {"gRPC": (config.grpc_port or 0, "--port"),
                                       "REST": (config.rest_port or 0, "--rest_api_port")})
        configs = _model_configs(args, vertex)
    except (ValueError, OSError, KeyError) as err:
        print(f"sr-tf serve: {str(err).strip(chr(34) + chr(39))}", file=sys.stderr)
        return 2
    _set_tensorflow_threads(args)
    from sr_tf.serving.server import ModelServer

    server = ModelServer(configs, config)
    try:
        server.bind()
    except PortInUseError as err:  # taken between the check and now
        print(f"sr-tf serve: {err}", file=sys.stderr)
        return 2
    logging.info("Serving %s", ", ".join(f"{c.name} from {c.base_path}" for c in configs))

    def ready():
        lines = server.urls(configs[0].name if len(configs) == 1 else "<name>")
        print("sr-tf serve: ready\n" + "\n".join(f"  {line}" for line in lines), flush=True)

    clean = server.serve_forever(on_ready=ready)
    if not clean:
        # A model call outlived the grace period (its client got 503). TensorFlow cannot cancel
        # it, and interpreter shutdown under a running op can crash; leave without waiting.
        logging.warning("A model call was still running after --grace-seconds; exiting without it")
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
