"""The TFRecord schema of sr-tf datasets (version 1) and its manifest.

One `tf.train.Example` per HR image (or HR sub-image):

| key                   | type          | meaning                                           |
|-----------------------|---------------|---------------------------------------------------|
| `image/encoded`       | bytes         | encoded HR image (PNG, or the source JPEG/PNG bytes unchanged) |
| `image/format`        | bytes         | `png` or `jpeg`                                   |
| `image/height`        | int64         | HR height in pixels                               |
| `image/width`         | int64         | HR width in pixels                                |
| `image/name`          | bytes         | unique name: the file stem, `_s###` for sub-images |
| `image/source`        | bytes         | file name of the source HR image                  |
| `image/crop`          | int64 x 4     | `[top, left, height, width]` in the (downscaled) source |
| `lr_x{s}/encoded`     | bytes         | encoded LR image for scale s (paired datasets)    |
| `lr_x{s}/format`, `lr_x{s}/height`, `lr_x{s}/width` | | as for the HR image   |

Shards are `{prefix}-{i:05d}-of-{n:05d}.tfrecord`; `manifest.json` beside them lists
each shard's record count, size, SHA-256 and the byte size of each record (so readers can
read any record by position), the build options, the skipped and converted inputs, and the
smallest HR height/width. Readers use only the shards the
manifest lists, so a shard being written (`*.partial`) is never read.
"""

from __future__ import annotations

import json
from typing import Any

import tensorflow as tf

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
FORMAT_NAME = "sr-tf-tfrecords"


def shard_name(prefix: str, index: int, count: int) -> str:
    return f"{prefix}-{index:05d}-of-{count:05d}.tfrecord"


def lr_key(scale: int) -> str:
    return f"lr_x{int(scale)}"


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _ints(*values: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def serialize_example(
    hr: bytes,
    hr_format: str,
    height: int,
    width: int,
    name: str,
    source: str,
    crop: tuple[int, int, int, int],
    lr: dict[int, tuple[bytes, str, int, int]] | None = None,
) -> bytes:
    """A serialized `tf.train.Example` in the schema above.

    Args:
      hr: encoded HR image bytes.
      hr_format: "png" or "jpeg".
      height, width: HR size in pixels.
      name: unique record name.
      source: source file name.
      crop: `(top, left, height, width)` of this record in the source.
      lr: optional `{scale: (encoded, format, height, width)}`.
    """
    feature = {
        "image/encoded": _bytes(hr),
        "image/format": _bytes(hr_format.encode()),
        "image/height": _ints(height),
        "image/width": _ints(width),
        "image/name": _bytes(name.encode()),
        "image/source": _bytes(source.encode()),
        "image/crop": _ints(*crop),
    }
    for scale, (data, fmt, h, w) in sorted((lr or {}).items()):
        key = lr_key(scale)
        feature[f"{key}/encoded"] = _bytes(data)
        feature[f"{key}/format"] = _bytes(fmt.encode())
        feature[f"{key}/height"] = _ints(h)
        feature[f"{key}/width"] = _ints(w)
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def feature_spec(lr_scales: tuple[int, ...] = ()) -> dict[str, Any]:
    """The `tf.io.parse_single_example` spec; `lr_scales` adds the LR images of those scales."""
    spec: dict[str, Any] = {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/format": tf.io.FixedLenFeature([], tf.string),
        "image/height": tf.io.FixedLenFeature([], tf.int64),
        "image/width": tf.io.FixedLenFeature([], tf.int64),
        "image/name": tf.io.FixedLenFeature([], tf.string),
        "image/source": tf.io.FixedLenFeature([], tf.string, default_value=""),
        "image/crop": tf.io.FixedLenFeature([4], tf.int64, default_value=[0, 0, 0, 0]),
    }
    for scale in lr_scales:
        key = lr_key(scale)
        spec[f"{key}/encoded"] = tf.io.FixedLenFeature([], tf.string)
        spec[f"{key}/format"] = tf.io.FixedLenFeature([], tf.string)
        spec[f"{key}/height"] = tf.io.FixedLenFeature([], tf.int64)
        spec[f"{key}/width"] = tf.io.FixedLenFeature([], tf.int64)
    return spec


def parse_example(serialized: tf.Tensor, lr_scales: tuple[int, ...] = ()) -> dict[str, tf.Tensor]:
    """Parses one serialized record (a scalar string tensor) into the schema's features."""
    return tf.io.parse_single_example(serialized, feature_spec(lr_scales))


def read_manifest(directory: str) -> dict[str, Any]:
    """Loads and checks `manifest.json` from a records directory (local or `gs://`).

    Raises:
      FileNotFoundError: no manifest (not a finished `make-tfrecords` output).
      ValueError: an unreadable manifest, one of another format or of a newer schema version.
    """
    path = join(directory, MANIFEST_NAME)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"No {MANIFEST_NAME} in {directory!r}: is it a finished `sr-tf make-tfrecords` output?")
    with tf.io.gfile.GFile(path, "r") as f:
        text = f.read()
    try:
        manifest = json.loads(text)
    except ValueError as e:
        raise ValueError(f"{path} is not readable JSON (truncated or overwritten?): {e}. Run `sr-tf make-tfrecords` "
                         "again with the same arguments to rebuild it.") from e
    found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
    if found != FORMAT_NAME:
        raise ValueError(f"{path} is not an sr-tf records manifest. Received: format={found!r}")
    version = manifest.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ValueError(f"{path} has schema_version={version!r}; this sr-tf reads versions <= {SCHEMA_VERSION}.")
    return manifest


def join(directory: str, name: str) -> str:
    """Joins paths for local and `gs://` directories alike."""
    return directory.rstrip("/") + "/" + name if "://" in directory else tf.io.gfile.join(directory, name)
