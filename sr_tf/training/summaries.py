"""TensorBoard scalar and image summaries without importing the `tensorboard` package.

`tf.summary.scalar/image` need `tensorboard` installed; these write the same event records
(plugin "scalars" / "images" metadata) with TensorFlow's core `tf.summary.write`, so logs
open in TensorBoard wherever it is installed.
"""

from __future__ import annotations

import tensorflow as tf
from tensorflow.core.framework import summary_pb2


def _metadata(plugin: str, data_class: int) -> bytes:
    meta = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin), data_class=data_class
    )
    return meta.SerializeToString()


def scalar(name: str, value, step: int) -> None:
    """A float scalar under `name` at `step` (needs a default writer)."""
    tf.summary.write(
        name, tf.cast(value, tf.float32), step=step,
        metadata=_metadata("scalars", summary_pb2.DATA_CLASS_SCALAR),
    )


def image(name: str, images, step: int, max_outputs: int = 3) -> None:
    """`[N, H, W, 3] float in [0, 1]` images, PNG-encoded (the first `max_outputs`)."""
    images = tf.convert_to_tensor(images)[:max_outputs]
    encoded = tf.map_fn(
        lambda x: tf.io.encode_png(tf.image.convert_image_dtype(x, tf.uint8, saturate=True)),
        images, fn_output_signature=tf.string,
    )
    shape = tf.shape(images)
    dims = tf.strings.as_string(tf.stack([shape[2], shape[1]]))  # width, height
    tf.summary.write(
        name, tf.concat([dims, encoded], axis=0), step=step,
        metadata=_metadata("images", summary_pb2.DATA_CLASS_BLOB_SEQUENCE),
    )
