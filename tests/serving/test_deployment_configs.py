"""The deployment files for real TF Serving parse as the text protos TF Serving reads, and the
Dockerfile's flags are tensorflow_model_server flags of the version it pins."""

from __future__ import annotations

import json
import re
from pathlib import Path

from google.protobuf import descriptor_pb2, text_format
from tensorflow_serving.config import model_server_config_pb2

from sr_tf.cli import build_parser
from sr_tf.cli.serve import TF_SERVING_FLAGS
from sr_tf.serving.batching import parse_batching_parameters
from sr_tf.serving.models import parse_model_config_file
from sr_tf.serving.protos import message_class, parse_text

ROOT = Path(__file__).resolve().parents[2]
F = descriptor_pb2.FieldDescriptorProto


def test_models_config_is_a_model_server_config():
    proto = model_server_config_pb2.ModelServerConfig()
    text_format.Parse((ROOT / "serving" / "models.config").read_text(), proto)
    (config,) = proto.model_config_list.config
    assert config.base_path == f"/models/{config.name}" and config.model_platform == "tensorflow"
    assert config.model_version_policy.latest.num_versions == 1
    assert [c.name for c in parse_model_config_file(ROOT / "serving" / "models.config")] == [config.name]


def test_batching_parameters_declare_every_upstream_field():
    # tensorflow_serving/servables/tensorflow/session_bundle_config.proto, message BatchingParameters
    upstream = {
        "max_batch_size": (1, ".google.protobuf.Int64Value"), "batch_timeout_micros": (2, ".google.protobuf.Int64Value"),
        "max_enqueued_batches": (3, ".google.protobuf.Int64Value"), "num_batch_threads": (4, ".google.protobuf.Int64Value"),
        "thread_pool_name": (5, ".google.protobuf.StringValue"), "allowed_batch_sizes": (6, F.TYPE_INT64),
        "pad_variable_length_inputs": (7, F.TYPE_BOOL),
        "enable_large_batch_splitting": (8, ".google.protobuf.BoolValue"),
        "max_execution_batch_size": (9, ".google.protobuf.Int64Value"),
    }
    fields = {f.name: f for f in message_class("BatchingParameters").DESCRIPTOR.fields}
    assert set(fields) == set(upstream)
    for name, (number, kind) in upstream.items():
        assert fields[name].number == number, name
        if isinstance(kind, str):
            assert "." + fields[name].message_type.full_name == kind, name
        else:
            assert fields[name].type == kind, name
    monitoring = {f.name: f.number for f in message_class("PrometheusConfig").DESCRIPTOR.fields}
    assert monitoring == {"enable": 1, "path": 2}


def test_batching_and_monitoring_configs():
    text = (ROOT / "serving" / "batching.config").read_text()
    proto = parse_text("BatchingParameters", text)
    assert proto.max_batch_size.value == 8 and not proto.pad_variable_length_inputs
    assert list(proto.allowed_batch_sizes)[-1] == proto.max_batch_size.value  # TF Serving's rule
    assert proto.HasField("enable_large_batch_splitting")
    config = parse_batching_parameters(text)
    assert (config.max_batch_size, config.allowed_batch_sizes, config.enable_large_batch_splitting) == (8, (1, 2, 4, 8), False)
    monitoring = parse_text("MonitoringConfig", (ROOT / "serving" / "monitoring.config").read_text())
    assert monitoring.prometheus_config.enable
    assert monitoring.prometheus_config.path == "/monitoring/prometheus/metrics"


def _stages(text: str) -> dict[str, list[str]]:
    stages, name = {}, None
    for line in text.splitlines():
        m = re.match(r"FROM (\S+) AS (\S+)", line)
        if m:
            name = m[2]
            stages[name] = [m[1]]
        elif name:
            stages[name].append(line)
    return stages


def _json_list(lines: list[str], keyword: str) -> list[str]:
    start = next(i for i, line in enumerate(lines) if line.startswith(keyword))
    text = ""
    for line in lines[start:]:
        text += line.rstrip("\\").strip()[len(keyword):] if line.startswith(keyword) else line.rstrip("\\").strip()
        if text.endswith("]"):
            return json.loads(text)
    raise AssertionError(f"no {keyword} list")


def test_dockerfile_pins_tf_serving_and_its_flags_exist_in_that_version():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"ARG TF_SERVING_VERSION=\d+\.\d+\.\d+", text), "pin a TF Serving version"
    stages = _stages(text)
    assert stages["tf-serving"][0] == "tensorflow/serving:${TF_SERVING_VERSION}"
    assert list(stages)[-1] == "tf-serving"  # the default target
    flags = _json_list(stages["tf-serving"], "CMD ")
    names = [f[2:].split("=")[0] for f in flags]
    assert set(names) <= set(TF_SERVING_FLAGS), set(names) - set(TF_SERVING_FLAGS)
    # variable-size images: TF Serving would fail batches that join two sizes (see batching.config)
    assert "enable_batching" not in names
    for name in ("models.config", "batching.config", "monitoring.config"):
        assert f"serving/{name}" in text and f"/config/{name}" in text
    # the same command line is accepted by `sr-tf serve`
    args = build_parser(["serve", *flags]).parse_args(["serve", *flags])
    assert args.model_config_file == "/config/models.config" and args.model_config_file_poll_wait_seconds == 60


def test_dockerfile_serve_and_vertex_targets_run_sr_tf_serve():
    stages = _stages((ROOT / "Dockerfile").read_text())
    serve, vertex = stages["serve"], stages["vertex"]
    assert _json_list(serve, "ENTRYPOINT ") == ["sr-tf", "serve"]  # serving/deploy/ passes only flags
    assert any(line.startswith("RUN pip install") and ".[serve]" in line for line in serve)
    # any AIP_* variable would turn Vertex mode on in the plain image
    assert not any(line.startswith("ENV AIP_") for line in serve)
    assert vertex[0] == "serve"  # built on it
    assert _json_list(vertex, "ENTRYPOINT ") == ["sr-tf", "serve", "--vertex"]
    assert "ENV AIP_HTTP_PORT=8080" in vertex
