"""Helpers shared by the serving tests."""

from __future__ import annotations

import io
import shutil

import numpy as np
from PIL import Image

from tests.net_helpers import free_port  # noqa: F401 - serving tests import it from here


def reference_upscale(model, pixels: np.ndarray) -> np.ndarray:
    """The Keras model called directly with the export's documented scaling: [0, 255] in and out."""
    out = model(np.clip(pixels, 0, 255).astype(np.float32) / 255.0).numpy()
    return np.round(np.clip(out * 255.0, 0.0, 255.0))


def copy_version(exported, base_path, version: int):
    """Copies an exported version into `base_path/version` atomically (copy, then rename)."""
    base_path.mkdir(parents=True, exist_ok=True)
    tmp = base_path / f".tmp-{version}"
    shutil.copytree(exported, tmp)
    tmp.rename(base_path / str(version))
    return base_path / str(version)


def image_bytes(array: np.ndarray, fmt: str = "PNG", mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format=fmt)
    return buf.getvalue()


def random_pixels(seed: int, shape=(1, 8, 8, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.float32)


def assert_upscaled_equal(actual: np.ndarray, desired: np.ndarray) -> None:
    """Equal whole-number pixels, except that float32 differences between graph and eager kernels
    may move a value across a .5 rounding boundary: at most 1 apart, and rarely (< 0.1%)."""
    actual, desired = np.asarray(actual), np.asarray(desired)
    assert actual.shape == desired.shape, (actual.shape, desired.shape)
    diff = np.abs(actual.astype(np.float64) - desired)
    assert np.nanmax(diff, initial=0) <= 1, f"max difference {np.nanmax(diff)}"
    assert np.mean(diff > 0) < 1e-3, f"{np.mean(diff > 0):.4%} of the values differ"




def bomb_png(width: int, height: int) -> bytes:
    """A valid all-black 1-bit grayscale PNG of width x height, written row by row (a 13500x13500
    one is ~22 KB and never exists as pixels here)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def export_slow_model(path) -> str:
    """A SavedModel whose `serving_default` (`images` -> `upscaled`, same shape) busy-waits for
    `images[0, 0, 0, 0]` seconds: requests of a chosen duration for lifecycle tests."""
    import tensorflow as tf

    class Slow(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
        def serve(self, images):
            seconds = tf.cast(images[0, 0, 0, 0], tf.float64)
            start = tf.timestamp()
            (n,) = tf.while_loop(lambda i: tf.timestamp() - start < seconds, lambda i: (i + 1,), (tf.constant(0),))
            return {"upscaled": images + tf.cast(n * 0, tf.float32)}

    module = Slow()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return str(path)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class ServeProcess:
    """`python -m sr_tf serve ARGS` in a subprocess under an address-space cap (so a regression
    cannot take the shared machine's memory), waiting until `ready_url` answers 200."""

    def __init__(self, args: list[str], ready_url: str | None, memory_bytes: int = 5 << 30,
                 timeout: float = 120.0, env: dict | None = None):
        import os
        import resource
        import subprocess
        import sys
        import time

        import requests

        def cap():
            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sr_tf", "serve", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}, preexec_fn=cap,
        )
        if ready_url is None:
            return
        try:  # never leave the process behind, whatever fails while waiting
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    if requests.get(ready_url, timeout=2).status_code == 200:
                        return
                except requests.RequestException:  # not listening yet, or busy loading
                    pass
                if self.proc.poll() is not None:
                    raise AssertionError(f"sr-tf serve exited {self.proc.returncode}: {self.output()}")
                time.sleep(0.2)
            raise AssertionError("sr-tf serve did not become ready")
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stdout.read().decode(errors="replace")[-3000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
