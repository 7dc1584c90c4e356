"""Helpers shared by the batch prediction tests: a real GCS emulator process, images, result files."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
from PIL import Image

from tests.net_helpers import free_port  # noqa: F401 - batch tests import it from here

SCALE = 2  # of the tiny test model

# gcp-storage-emulator imports `fs`, which calls pkg_resources (gone from setuptools >= 81); this
# stand-in provides the two functions `fs` uses, and only when the real module is missing.
_EMULATOR_MAIN = """
import importlib.metadata, sys, types
try:
    import pkg_resources  # noqa: F401
except ImportError:
    shim = types.ModuleType("pkg_resources")
    shim.declare_namespace = lambda name: None
    shim.iter_entry_points = lambda group, name=None: iter(
        [e for e in importlib.metadata.entry_points(group=group) if name is None or e.name == name])
    sys.modules["pkg_resources"] = shim
from gcp_storage_emulator.__main__ import main
sys.exit(main())
"""


def start_emulator(port: int) -> subprocess.Popen:
    """`gcp-storage-emulator start --in-memory` on 127.0.0.1:port; returns once it accepts connections."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _EMULATOR_MAIN, "start", "--host", "127.0.0.1", "--port", str(port),
         "--in-memory", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gcp-storage-emulator exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("gcp-storage-emulator did not start within 30 s")


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def random_image(seed: int, shape=(16, 16, 3), dtype=np.uint8) -> np.ndarray:
    high = 65536 if dtype == np.uint16 else 256
    return np.random.default_rng(seed).integers(0, high, shape).astype(dtype)


def reference_upscale(model, pixels: np.ndarray) -> np.ndarray:
    """Independent reference: the Keras model on [0, 1] inputs, scaled to [0, 255], clipped, rounded."""
    out = model(np.clip(pixels, 0, 255).astype(np.float32) / 255.0).numpy()
    return np.round(np.clip(out * 255.0, 0.0, 255.0))


def assert_upscaled_equal(actual, desired) -> None:
    """Whole-number pixels equal, except that graph vs eager float32 kernels may move a value across
    a .5 rounding boundary: at most 1 apart, and rarely."""
    actual, desired = np.asarray(actual, np.float64), np.asarray(desired, np.float64)
    assert actual.shape == desired.shape, (actual.shape, desired.shape)
    diff = np.abs(actual - desired)
    assert diff.max(initial=0) <= 1, f"max difference {diff.max()}"
    assert np.mean(diff > 0) < 1e-3, f"{np.mean(diff > 0):.4%} of the values differ"


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.update(extra)
    return env
