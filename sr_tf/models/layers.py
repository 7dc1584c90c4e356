"""Building blocks shared by several architectures.

Pixel shuffle channel order: TensorFlow's `tf.nn.depth_to_space` reads output
pixel (i, j) of channel c from input channel `(i * r + j) * C + c`; PyTorch's
`nn.PixelShuffle` (and ncnn's PixelShuffle in mode 0) reads it from
`c * r * r + i * r + j`. Our layers use the TensorFlow order (the native,
fused op); importers of PyTorch/ncnn weights permute the channels of the conv
before the shuffle with `torch_to_tf_shuffle_permutation`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def torch_to_tf_shuffle_permutation(channels: int, factor: int) -> np.ndarray:
    """Index array `p` with `tf_channels = torch_channels[..., p]`.

    For a conv feeding a pixel shuffle of `factor` that outputs `channels`
    channels: position `k * channels + c` in TensorFlow order holds PyTorch
    channel `c * factor**2 + k`, where `k = i * factor + j` is the sub-pixel.

    Returns:
      int64 array of shape `[channels * factor**2]`.
    """
    r2 = factor * factor
    k, c = np.meshgrid(np.arange(r2), np.arange(channels), indexing="ij")
    return (c * r2 + k).reshape(-1)


@keras.saving.register_keras_serializable(package="sr_tf")
class PixelShuffle(keras.layers.Layer):
    """Sub-pixel upsampling: `[N, H, W, C * r * r] -> [N, H * r, W * r, C]` (TF channel order)."""

    def __init__(self, factor: int, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, x):
        return tf.nn.depth_to_space(x, self.factor)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        r = self.factor
        return (n, None if h is None else h * r, None if w is None else w * r, c // (r * r))

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def _mirror_indices(size: tf.Tensor, padded: tf.Tensor) -> tf.Tensor:
    idx = tf.range(padded)
    idx = tf.where(idx >= size, 2 * size - 1 - idx, idx)  # symmetric mirror at the far edge
    return tf.clip_by_value(idx, 0, size - 1)  # images smaller than the padding repeat their edge


def pad_to_multiple(x: tf.Tensor, multiple: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Pads `[N, H, W, C]` at the bottom/right (mirrored) so H and W are multiples of `multiple`.

    Works for any size, even 1x1. Returns the padded tensor and the original
    H and W (scalar int32 tensors), so callers can crop their output back.
    """
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    ph = h + (multiple - h % multiple) % multiple
    pw = w + (multiple - w % multiple) % multiple
    x = tf.gather(x, _mirror_indices(h, ph), axis=1)
    return tf.gather(x, _mirror_indices(w, pw), axis=2), h, w


def validate_scale(name: str, scale: int, allowed: tuple[int, ...] = (2, 3, 4)) -> int:
    if int(scale) != scale or int(scale) not in allowed:
        raise ValueError(f"{name} supports scales {allowed}. Received: scale={scale!r}")
    return int(scale)


def validate_positive(name: str, **values: int) -> None:
    for key, value in values.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: `{key}` must be a positive integer. Received: {key}={value!r}")


def to_output_dtype(x: tf.Tensor) -> tf.Tensor:
    """Generators return float32 (the usual choice under mixed precision)."""
    return tf.cast(x, "float32")


def small_kaiming() -> keras.initializers.Initializer:
    """BasicSR's `default_init_weights(scale=0.1)`: PyTorch `kaiming_normal_` (fan_in, gain sqrt(2))
    times 0.1, i.e. variance `2 * 0.01 / fan_in`. Keeps residual branches near zero at the start."""
    return keras.initializers.VarianceScaling(scale=0.02, mode="fan_in", distribution="untruncated_normal")
