"""The deployment files for real TF Serving parse as the text protos TF Serving reads."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from sr_tf.serving.batching import parse_batching_parameters
from sr_tf.serving.models import parse_model_config_file
from sr_tf.serving.protos import parse_text

ROOT = Path(__file__).resolve().parents[2]


def test_models_config_is_a_model_server_config():
    proto = model_server_config_pb2.ModelServerConfig()
    text_format.Parse((ROOT / "serving" / "models.config").read_text(), proto)
    (config,) = proto.model_config_list.config
    assert config.base_path == f"/models/{config.name}" and config.model_platform == "tensorflow"
    assert config.model_version_policy.latest.num_versions == 1
    assert [c.name for c in parse_model_config_file(ROOT / "serving" / "models.config")] == [config.name]


def test_batching_and_monitoring_configs():
    text = (ROOT / "serving" / "batching.config").read_text()
    proto = parse_text("BatchingParameters", text)
    assert proto.max_batch_size.value == 8 and not proto.pad_variable_length_inputs
    assert parse_batching_parameters(text).max_batch_size == 8
    monitoring = parse_text("MonitoringConfig", (ROOT / "serving" / "monitoring.config").read_text())
    assert monitoring.prometheus_config.enable
    assert monitoring.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_dockerfile_uses_the_official_image_and_the_configs():
    text = (ROOT / "Dockerfile").read_text()
    froms = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
    assert froms == ["tensorflow/serving:${TF_SERVING_VERSION}"]
    for name in ("models.config", "batching.config", "monitoring.config"):
        assert f"serving/{name}" in text and f"/config/{name}" in text
