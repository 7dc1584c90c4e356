"""Helpers of the data tests: tiny image folders and an independent NumPy reference of MATLAB's imresize."""

from __future__ import annotations

import io
import math
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def matlab_cubic(x: float) -> float:
    """MATLAB's `cubic` kernel (Keys, a = -0.5), written out from imresize.m."""
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax**3 - 2.5 * ax**2 + 1
    if ax <= 2:
        return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return 0.0


def matlab_contributions(in_length: int, out_length: int, scale: float) -> list[list[tuple[int, float]]]:
    """For each output index, `(input index, weight)` pairs as imresize.m's `contributions` makes them.

    `scale` is MATLAB's (output/input, e.g. 1/4). Antialiasing on. Indices are 0-based here,
    mirrored with MATLAB's `aux = [1:n, n:-1:1]`.
    """
    width = 4.0
    if scale < 1:
        kernel = lambda t: scale * matlab_cubic(scale * t)  # noqa: E731
        width = width / scale
    else:
        kernel = matlab_cubic
    taps = int(math.ceil(width)) + 2
    aux = list(range(1, in_length + 1)) + list(range(in_length, 0, -1))
    result = []
    for x in range(1, out_length + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        indices = [left + p for p in range(taps)]
        weights = [kernel(u - i) for i in indices]
        total = sum(weights)
        result.append([(aux[(i - 1) % len(aux)] - 1, w / total) for i, w in zip(indices, weights, strict=True)])
    return result


def matlab_imresize(image: np.ndarray, factor: int) -> np.ndarray:
    """`imresize(image, 1/factor)` on a float64 `[H, W, C]` array (rows first, as MATLAB orders equal scales)."""
    h, w = image.shape[:2]
    out_h, out_w = math.ceil(h / factor), math.ceil(w / factor)
    rows = np.zeros((out_h, w, image.shape[2]))
    for o, contribution in enumerate(matlab_contributions(h, out_h, 1 / factor)):
        for i, weight in contribution:
            rows[o] += weight * image[i]
    out = np.zeros((out_h, out_w, image.shape[2]))
    for o, contribution in enumerate(matlab_contributions(w, out_w, 1 / factor)):
        for i, weight in contribution:
            out[:, o] += weight * rows[:, i]
    return out


def fspecial_gaussian(size: int, sigma: float) -> np.ndarray:
    """MATLAB `fspecial('gaussian', size, sigma)`."""
    ax = np.arange(size) - (size - 1) / 2
    yy, xx = np.meshgrid(ax, ax, indexing="ij")
    k = np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
    return k / k.sum()


def imfilter_replicate(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """MATLAB `imfilter(image, kernel, 'replicate')` (correlation) on `[H, W, C]` float64."""
    r = kernel.shape[0] // 2
    padded = np.pad(image, ((r, r), (r, r), (0, 0)), mode="edge")
    out = np.zeros_like(image)
    for dy in range(kernel.shape[0]):
        for dx in range(kernel.shape[1]):
            out += kernel[dy, dx] * padded[dy : dy + image.shape[0], dx : dx + image.shape[1]]
    return out


def random_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def save(array: np.ndarray, path: Path, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **kwargs)
    data = buffer.getvalue()
    path.write_bytes(data)
    return data


def blocky_pair(rng: np.random.Generator, h: int, w: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """`(lr, hr)` with each LR pixel repeated `scale x scale` times in HR: `hr[::s, ::s] == lr`."""
    lr = random_image(rng, h, w)
    return lr, np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1)


def huge_png_header(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims a huge image (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def make_bad_inputs(folder: Path, good: bytes) -> list[str]:
    """Adds a non-image, an empty file, a huge-header PNG and a truncated PNG; returns their names."""
    (folder / "notes.txt").write_text("not an image")
    (folder / "empty.png").write_bytes(b"")
    (folder / "huge.png").write_bytes(huge_png_header())
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    return ["empty.png", "huge.png", "notes.txt", "truncated.png"]


def read_records(path: str) -> list[dict]:
    """All records of one shard as dicts of Python values (via tf.train.Example)."""
    import tensorflow as tf

    out = []
    for raw in tf.data.TFRecordDataset(path):
        example = tf.train.Example.FromString(raw.numpy())
        record = {}
        for key, feature in example.features.feature.items():
            kind = feature.WhichOneof("kind")
            values = list(getattr(feature, kind).value)
            record[key] = values[0] if len(values) == 1 and key != "image/crop" else values
        out.append(record)
    return out


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def write_folder(folder: Path, images: dict[str, np.ndarray]) -> dict[str, bytes]:
    """Saves `{file name: array}` (PNG or JPEG by suffix); returns the bytes written."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, array in images.items():
        fmt = "JPEG" if name.lower().endswith((".jpg", ".jpeg")) else "PNG"
        out[name] = save(array, folder / name, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out


def build_records(tmp_path: Path, images: dict[str, np.ndarray], lr: dict[int, dict[str, np.ndarray]] | None = None, name: str = "records", **options) -> str:
    """Writes the images (and `X<s>` LR folders) under tmp_path and builds records; returns the records dir."""
    from sr_tf.data.records import BuildConfig, make_tfrecords

    hr_dir = tmp_path / f"{name}_hr"
    write_folder(hr_dir, images)
    lr_dir = None
    if lr:
        lr_dir = tmp_path / f"{name}_lr"
        for scale, files in lr.items():
            write_folder(lr_dir / f"X{scale}", files)
    out = tmp_path / name
    options.setdefault("num_shards", 2)
    make_tfrecords(BuildConfig(hr_dir=str(hr_dir), output_dir=str(out), lr_dir=str(lr_dir) if lr_dir else None, progress=False, **options))
    return str(out)


def batches(dataset, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(lr.numpy(), hr.numpy()) for lr, hr in dataset.take(count)]
