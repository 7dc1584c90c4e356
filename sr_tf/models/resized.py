"""A generator followed by a fixed resize, as some published models ship.

Real-ESRGAN's `realesr-animevideov3-x2` and `-x3` are its x4 network followed
by a bicubic downscale by 0.5 / 0.75 (an ncnn `Interp` layer). This model
reproduces that: `[N, H, W, C] -> generator -> resize to [N, s*H, s*W, C]`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from sr_tf.models.layers import validate_scale

METHODS = ("ncnn_bicubic",)


def cubic_taps(in_size: tf.Tensor, out_size: tf.Tensor, a: float = -0.75) -> tuple[tf.Tensor, tf.Tensor]:
    """4-tap cubic convolution weights for resizing one axis, as ncnn's Interp (resize_type=3) does.

    Half-pixel centres (`src = (dst + 0.5) * in/out - 0.5`), Keys cubic with
    `a = -0.75`, no antialiasing, borders replicated.

    Returns:
      `(indices [out, 4] int32, weights [out, 4] float32)`.
    """
    in_size = tf.cast(in_size, tf.float64)
    dst = tf.range(tf.cast(out_size, tf.float64), dtype=tf.float64)
    src = (dst + 0.5) * (in_size / tf.cast(out_size, tf.float64)) - 0.5
    left = tf.floor(src)
    t = tf.cast(src - left, tf.float32)
    w0 = a * (t + 1) ** 3 - 5 * a * (t + 1) ** 2 + 8 * a * (t + 1) - 4 * a
    w1 = (a + 2) * t**3 - (a + 3) * t**2 + 1
    w2 = (a + 2) * (1 - t) ** 3 - (a + 3) * (1 - t) ** 2 + 1
    w3 = 1.0 - w0 - w1 - w2
    offsets = tf.constant([-1, 0, 1, 2], dtype=tf.int32)
    idx = tf.cast(left, tf.int32)[:, None] + offsets[None, :]
    idx = tf.clip_by_value(idx, 0, tf.cast(in_size, tf.int32) - 1)
    return idx, tf.stack([w0, w1, w2, w3], axis=1)


def _resize_axis(x: tf.Tensor, out_size: tf.Tensor, axis: int) -> tf.Tensor:
    idx, w = cubic_taps(tf.shape(x)[axis], out_size)
    gathered = tf.gather(x, idx, axis=axis)  # the axis becomes [out, 4]
    shape = [1] * (len(x.shape) + 1)
    shape[axis], shape[axis + 1] = -1, 4
    w = tf.reshape(tf.cast(w, x.dtype), shape)
    return tf.reduce_sum(gathered * w, axis=axis + 1)


def ncnn_bicubic_resize(x: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """Resizes `[N, H, W, C]` to `[N, size[0], size[1], C]` exactly as ncnn's bicubic Interp."""
    return _resize_axis(_resize_axis(x, size[0], 1), size[1], 2)


@keras.saving.register_keras_serializable(package="sr_tf")
class ResizedGenerator(keras.Model):
    """`generator` (native scale g) then a resize to the final `scale`: `[N, H, W, C] -> [N, s*H, s*W, C]`.

    Args:
      generator: a generator model, or its serialized config (how `from_config` passes it).
      scale: final integer factor (2, 3 or 4).
      method: "ncnn_bicubic" (ncnn's Interp resize_type=3).
    """

    def __init__(self, generator, scale: int, method: str = "ncnn_bicubic", **kwargs):
        super().__init__(**kwargs)
        if isinstance(generator, dict):
            generator = keras.saving.deserialize_keras_object(generator)
        if not isinstance(generator, keras.Model):
            raise ValueError(f"ResizedGenerator needs a keras.Model generator. Received: generator={generator!r}")
        if method not in METHODS:
            raise ValueError(f"ResizedGenerator: method must be one of {METHODS}. Received: method={method!r}")
        self.generator = generator
        self.scale = validate_scale("ResizedGenerator", scale)
        self.method = method

    def call(self, x):
        size = tf.shape(x)[1:3] * self.scale
        return ncnn_bicubic_resize(self.generator(x), size)

    def get_config(self):
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "scale": self.scale,
            "method": self.method,
        }

