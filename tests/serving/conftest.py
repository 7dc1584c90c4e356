"""Shared fixtures: one tiny exported model, and servers on free loopback ports."""

from __future__ import annotations

import pytest

from sr_tf.export import ExportConfig, export_savedmodel
from sr_tf.models import SRVGGNetCompact

SCALE = 2


@pytest.fixture(scope="session")
def tiny_model():
    import keras
    import numpy as np

    keras.utils.set_random_seed(1)
    model = SRVGGNetCompact(num_feat=8, num_conv=1, upscale=SCALE)
    model(np.zeros((1, 4, 4, 3), np.float32))  # builds the weights
    return model


@pytest.fixture(scope="session")
def exported(tmp_path_factory, tiny_model):
    """BASE/tiny/1 with the tiny model; returns the version directory."""
    base = tmp_path_factory.mktemp("models")
    return export_savedmodel(tiny_model, base / "tiny" / "1", ExportConfig(tile_size=0, warmup_size=8))


@pytest.fixture(scope="module")
def server(exported):
    """A server for the `tiny` model with batching, small limits and free ports."""
    from sr_tf.serving.batching import BatchingConfig
    from sr_tf.serving.models import ModelConfig
    from sr_tf.serving.server import ModelServer, ServerConfig
    from sr_tf.serving.service import Limits

    config = ServerConfig(
        rest_port=0, grpc_port=0, poll_seconds=0,
        limits=Limits(max_request_bytes=2 * 1024 * 1024, max_pixels=64 * 64 * 32),
        batching=BatchingConfig(enabled=True, max_batch_size=8, batch_timeout_micros=20000, max_enqueued=256),
        grace_seconds=5,
    )
    srv = ModelServer([ModelConfig("tiny", str(exported.parent))], config).start()
    yield srv
    srv.stop()


@pytest.fixture()
def rest_url(server):
    return f"http://127.0.0.1:{server.rest_port}"


@pytest.fixture()
def grpc_target(server):
    return f"127.0.0.1:{server.grpc_port}"
