"""Evaluation pairs from sr-tf TFRecords (`sr_tf.data.schema`, one record per HR image)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from sr_tf.evaluation.data import (
    TFRECORD_EXTENSIONS,
    EvalPair,
    HRPreparation,
    _align_pair,
    degrade,
    prepare_hr,
    to_rgb8,
)


def record_files(paths: Sequence[str | os.PathLike]) -> list[str]:
    """TFRecord files from files and folders (a folder with a `manifest.json`: the shards it
    lists, as `sr_tf.data.records.shard_paths`; otherwise its `*.tfrecord` files, sorted)."""
    from sr_tf.data.records import shard_paths
    from sr_tf.data.schema import MANIFEST_NAME

    files: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            if (path / MANIFEST_NAME).is_file():
                files.extend(shard_paths(str(path)))
                continue
            found = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in TFRECORD_EXTENSIONS)
            if not found:
                raise FileNotFoundError(f"No TFRecord files in folder {str(path)!r}.")
            files.extend(found)
        elif path.is_file():
            files.append(str(path))
        else:
            raise FileNotFoundError(f"No such TFRecord file or folder: {str(raw)!r}")
    return files


def _decode(data: bytes) -> np.ndarray:
    import tensorflow as tf

    return tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False).numpy()


def pairs_from_tfrecords(
    paths: Sequence[str | os.PathLike],
    scale: int,
    degradation: str,
    preparation: HRPreparation,
    seed: int,
) -> Iterator[EvalPair]:
    """Records -> pairs; a record's own `lr_x{scale}` image is used when present, otherwise LR
    is made with `degradation` (random ones seeded with `(seed, record index)`)."""
    import tensorflow as tf

    from sr_tf.data.schema import lr_key

    files = record_files(paths)
    key = lr_key(scale)

    def generate():
        records = (
            (f"{file} #{i}", raw)
            for file in files
            for i, raw in enumerate(tf.data.TFRecordDataset(file).as_numpy_iterator())
        )
        for index, (source, raw) in enumerate(records):
            feature = tf.train.Example.FromString(raw).features.feature
            name = feature["image/name"].bytes_list.value[0].decode("utf-8", "replace")
            hr, notes = to_rgb8(_decode(feature["image/encoded"].bytes_list.value[0]))
            if f"{key}/encoded" in feature:
                if preparation != HRPreparation():
                    raise ValueError(
                        f"Record {name!r} holds its own LR image: HR downscale / centre crop cannot be applied. "
                        f"Received: {preparation}"
                    )
                lr, lr_notes = to_rgb8(_decode(feature[f"{key}/encoded"].bytes_list.value[0]))
                notes += [f"LR: {n}" for n in lr_notes] + [f"LR from the record ({key})"]
                hr, lr = _align_pair(hr, lr, scale, f"{name} (HR)", f"{name} ({key})", notes)
            else:
                hr, more = prepare_hr(hr, scale, preparation)
                notes += more
                lr = degrade(hr, scale, degradation, seed=(seed, index))
            yield EvalPair(name, hr, lr, source, notes)

    return generate()
