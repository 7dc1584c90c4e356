"""Fixtures: a tiny exported model and a real gcp-storage-emulator process."""

from __future__ import annotations

import os

import pytest
from batch_helpers import SCALE, free_port, start_emulator

from sr_tf.export import ExportConfig, export_savedmodel
from sr_tf.models import SRVGGNetCompact


@pytest.fixture(scope="session")
def tiny_model():
    import keras
    import numpy as np

    keras.utils.set_random_seed(7)
    model = SRVGGNetCompact(num_feat=8, num_conv=1, upscale=SCALE)
    model(np.zeros((1, 4, 4, 3), np.float32))
    return model


@pytest.fixture(scope="session")
def savedmodel(tmp_path_factory, tiny_model):
    """BASE/tiny/1 (untiled, as TF Serving would load it); returns the version directory."""
    base = tmp_path_factory.mktemp("models")
    return export_savedmodel(tiny_model, base / "tiny" / "1", ExportConfig(tile_size=0, warmup=False))


@pytest.fixture(scope="session")
def emulator():
    """A gcp-storage-emulator process (in memory, free port) with STORAGE_EMULATOR_HOST pointing at it."""
    from sr_tf import storage

    port = free_port()
    proc = start_emulator(port)
    old = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    storage.reset_client()
    yield os.environ["STORAGE_EMULATOR_HOST"]
    proc.kill()
    proc.wait(timeout=10)
    if old is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = old
    storage.reset_client()


@pytest.fixture(scope="session")
def gcs(emulator):
    """The emulator's storage client with one bucket `sr-tf-test`."""
    from sr_tf import storage

    client = storage.client()
    client.create_bucket("sr-tf-test")
    return client
