"""JSONL instances: tensor predictions equal the embedded server's `:predict`; b64 instances equal its
encoded-image signature; bad lines are errors."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import requests
from batch_helpers import jsonl, png_bytes, random_image
from PIL import Image

from sr_tf import storage
from sr_tf.batch import BatchConfig, run_batch


@pytest.fixture(scope="module")
def server(savedmodel):
    from sr_tf.serving.batching import BatchingConfig
    from sr_tf.serving.models import ModelConfig
    from sr_tf.serving.server import ModelServer, ServerConfig

    config = ServerConfig(rest_port=0, grpc_port=0, poll_seconds=0, batching=BatchingConfig(enabled=False),
                          grace_seconds=5)
    srv = ModelServer([ModelConfig("tiny", str(savedmodel.parent))], config).start()
    yield f"http://127.0.0.1:{srv.rest_port}/v1/models/tiny:predict"
    srv.stop()


def _rows(seed: int, n: int, h: int, w: int) -> list:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, h, w, 3)).astype(float).tolist()


def test_tensor_instances_equal_the_servers_predict(gcs, savedmodel, server):
    a, b = _rows(1, 5, 6, 7), _rows(2, 3, 9, 4)  # two shapes: batched separately
    png = png_bytes(random_image(3, (5, 6, 3)))
    lines = [json.dumps(r) for r in a[:3]] + [json.dumps({"images": b[0]})] + [json.dumps(r) for r in a[3:] + b[1:]]
    lines += [json.dumps({"b64": base64.b64encode(png).decode()}), "[[1, 2], [3, 4]]", "{not json"]
    storage.write_bytes("gs://sr-tf-test/jsonl/instances.jsonl", ("\n".join(lines) + "\n").encode())
    out = "gs://sr-tf-test/jsonl-out"
    summary = run_batch(BatchConfig(model=str(savedmodel), input="gs://sr-tf-test/jsonl/instances.jsonl",
                                    output=out, batch_size=2))
    assert (summary.succeeded, summary.failed) == (9, 2)

    results = jsonl(storage.read_text(f"{out}/prediction.results-00000-of-00001"))
    assert len(results) == 9
    got = {json.dumps(r["instance"]): r["prediction"] for r in results}
    for rows in (a, b):
        response = requests.post(server, json={"instances": rows}, timeout=60)
        assert response.status_code == 200, response.text
        for row, want in zip(rows, response.json()["predictions"], strict=True):
            key = json.dumps(row) if json.dumps(row) in got else json.dumps({"images": row})
            np.testing.assert_array_equal(np.array(got[key]), np.array(want))
            assert np.array(want).shape == (2 * len(row), 2 * len(row[0]), 3)

    # the {"b64": ...} line: an image file, equal to the server's encoded-image signature
    (b64_result,) = [r for r in results if isinstance(r["instance"], dict) and "b64" in r["instance"]]
    response = requests.post(server, json={"signature_name": "encoded_image",
                                           "instances": [{"b64": base64.b64encode(png).decode()}]}, timeout=60)
    served = np.array(Image.open(io.BytesIO(base64.b64decode(response.json()["predictions"][0]["b64"]))))
    written = np.array(Image.open(io.BytesIO(storage.read_bytes(b64_result["prediction"]["output"]))))
    np.testing.assert_array_equal(written, served)

    errors = jsonl(storage.read_text(f"{out}/prediction.errors_stats-00000-of-00001"))
    messages = sorted(e["error"]["message"] for e in errors)
    assert "JSON Parse error on line 11" in messages[0]
    assert "[H, W, 3]" in messages[1] and "shape=[2, 2]" in messages[1]
