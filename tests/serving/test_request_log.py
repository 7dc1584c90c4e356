"""Request logging from a model config file's `logging_config`: sampled requests and responses as
`PredictionLog` TFRecords read back with TF Serving's own `prediction_log_pb2`, files rotated by size,
the sampling rate within a binomial bound, and a log that cannot be written never failing a request."""

from __future__ import annotations

import math
import subprocess

import numpy as np
import pytest
import requests
import tensorflow as tf
from serving_helpers import random_pixels
from tensorflow_serving.apis import prediction_log_pb2

from sr_tf.serving.clients import GrpcClient, RestClient


def _config_file(tmp_path, base, prefix, rate: float) -> str:
    path = tmp_path / "models.config"
    path.write_text(f"""model_config_list {{
  config {{
    name: "tiny" base_path: "{base}" model_platform: "tensorflow"
    logging_config {{
      log_collector_config {{ type: "tfrecord" filename_prefix: "{prefix}" }}
      sampling_config {{ sampling_rate: {rate} }}
    }}
  }}
}}
""")
    return str(path)


def _server(exported, tmp_path, prefix, rate, file_bytes=64 << 20):
    from sr_tf.serving.models import parse_model_config_file
    from sr_tf.serving.server import ModelServer, ServerConfig

    path = _config_file(tmp_path, exported.parent, prefix, rate)
    models = parse_model_config_file(path)
    assert models[0].logging.sampling_rate == rate and models[0].logging.filename_prefix == str(prefix)
    return ModelServer(models, ServerConfig(rest_port=0, grpc_port=0, poll_seconds=0, warmup=False, grace_seconds=2,
                                            model_config_file=path, request_log_file_bytes=file_bytes)).start()


def _records(folder) -> list:
    out = []
    for f in sorted(folder.glob("*.tfrecord")):
        for raw in tf.data.TFRecordDataset(str(f)).as_numpy_iterator():
            out.append(prediction_log_pb2.PredictionLog.FromString(raw))
    return out


def _metric(srv, name: str, **labels) -> float:
    return srv.core.metrics.registry.get_sample_value(name, labels) or 0.0


def test_every_request_is_logged_as_a_prediction_log_and_files_rotate_by_size(exported, tmp_path):
    prefix = tmp_path / "logs" / "tiny"
    srv = _server(exported, tmp_path, prefix, 1.0, file_bytes=10_000)  # ~2 records of 8x8 -> 16x16 per file
    rest = RestClient(f"http://127.0.0.1:{srv.rest_port}", "tiny", timeout=10)
    grpc_client = GrpcClient(f"127.0.0.1:{srv.grpc_port}", "tiny", timeout=10)
    try:
        sent = [random_pixels(i) for i in range(6)]
        answers = [(rest if i % 2 else grpc_client).predict(x) for i, x in enumerate(sent)]
        srv.core.request_log.flush()
    finally:
        rest.close()
        grpc_client.close()
        srv.stop()
    files = sorted((tmp_path / "logs").glob("tiny-*.tfrecord"))
    assert len(files) == 3, files
    assert all(f.stat().st_size <= 10_000 for f in files)
    records = _records(tmp_path / "logs")
    assert len(records) == 6 and _metric(srv, "sr_tf_serving_request_logs_written_total", model_name="tiny") == 6
    for entry, x, y in zip(records, sent, answers, strict=True):  # one writer thread: request order
        assert entry.log_metadata.model_spec.name == "tiny" and entry.log_metadata.model_spec.version.value == 1
        assert entry.log_metadata.sampling_config.sampling_rate == 1.0
        assert list(entry.log_metadata.saved_model_tags) == ["serve"]
        request, response = entry.predict_log.request, entry.predict_log.response
        assert request.model_spec.signature_name == "serving_default"
        np.testing.assert_array_equal(tf.make_ndarray(request.inputs["images"]), x)
        np.testing.assert_array_equal(tf.make_ndarray(response.outputs["upscaled"]), y)


def _binomial_two_sided_bounds(n: int, p: float, alpha: float) -> tuple[int, int]:
    """The widest [lo, hi] with P(X < lo) <= alpha/2 and P(X > hi) <= alpha/2 for X ~ B(n, p)."""
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    lo, tail = 0, 0.0
    while tail + pmf[lo] <= alpha / 2:
        tail += pmf[lo]
        lo += 1
    hi, tail = n, 0.0
    while tail + pmf[hi] <= alpha / 2:
        tail += pmf[hi]
        hi -= 1
    return lo, hi


def test_sampling_rate_holds_within_a_binomial_bound(exported, tmp_path):
    n, rate = 300, 0.2
    srv = _server(exported, tmp_path, tmp_path / "logs" / "s", rate)
    client = GrpcClient(f"127.0.0.1:{srv.grpc_port}", "tiny", timeout=10)
    try:
        x = random_pixels(0, (1, 4, 4, 3))
        for _ in range(n):
            client.predict(x)
        srv.core.request_log.flush()
    finally:
        client.close()
        srv.stop()
    logged = len(_records(tmp_path / "logs"))
    lo, hi = _binomial_two_sided_bounds(n, rate, 1e-6)  # 60 expected; about [31, 95]
    assert lo <= logged <= hi, (logged, lo, hi)
    assert _metric(srv, "sr_tf_serving_request_logs_written_total", model_name="tiny") == logged


def _tiny_tmpfs(path):
    path.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(path)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root)")
    return path


@pytest.mark.parametrize("where", ["full-disk", "not-a-folder"])
def test_a_log_that_cannot_be_written_drops_records_and_requests_succeed(exported, tmp_path, where):
    if where == "full-disk":
        folder = _tiny_tmpfs(tmp_path / "small")
        prefix = folder / "r"
    else:
        (tmp_path / "file").write_text("a file, not a folder")
        prefix = tmp_path / "file" / "r"  # every open fails with ENOTDIR
    srv = _server(exported, tmp_path, prefix, 1.0)
    try:
        url = f"http://127.0.0.1:{srv.rest_port}/v1/models/tiny:predict"
        x = random_pixels(1, (1, 24, 24, 3))  # ~30 KB per record: the 16 KB disk is full at once
        for _ in range(4):
            r = requests.post(url, json={"inputs": x.tolist()}, timeout=10)
            assert r.status_code == 200, r.text
        srv.core.request_log.flush()
        dropped = _metric(srv, "sr_tf_serving_request_logs_dropped_total", model_name="tiny", reason="write_error")
        written = _metric(srv, "sr_tf_serving_request_logs_written_total", model_name="tiny")
        assert dropped >= 3 and dropped + written == 4, (dropped, written)
        page = requests.get(f"http://127.0.0.1:{srv.rest_port}/monitoring/prometheus/metrics", timeout=10).text
        assert 'sr_tf_serving_request_logs_dropped_total{model_name="tiny",reason="write_error"}' in page
    finally:
        srv.stop()
        if where == "full-disk":
            subprocess.run(["umount", str(prefix.parent)], check=False)


def test_invalid_logging_config_names_the_model_and_field(tmp_path):
    from sr_tf.serving.models import parse_model_config_file

    with pytest.raises(ValueError, match=r"'tiny'.*sampling_rate"):
        parse_model_config_file(_config_file(tmp_path, tmp_path, tmp_path / "p", 1.5))
