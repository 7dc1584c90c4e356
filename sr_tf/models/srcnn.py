"""SRCNN (Dong et al., 2014): three convolutions on a bicubic-upsampled image."""

from __future__ import annotations

import keras
import tensorflow as tf

from sr_tf.models.layers import to_output_dtype, validate_positive, validate_scale


@keras.saving.register_keras_serializable(package="sr_tf")
class SRCNN(keras.Model):
    """SRCNN 9-1-5 with 64/32 channels.

    As in the paper, the network refines a bicubic-upsampled image. With
    `upsample_input=True` (default) the model does that bicubic upsampling
    itself, so like every generator here it maps LR to SR:
    `[N, H, W, C] float32 in [0, 1] -> [N, s*H, s*W, C] float32 (about [0, 1])`.
    With `upsample_input=False` it expects the already upsampled image and keeps its size.

    Args:
      scale: 2, 3 or 4.
      num_channels: image channels (3 for RGB, 1 for Y).
      filters: channels of the first two layers (paper: 64, 32).
      kernel_sizes: kernel sizes of the three layers (paper: 9, 1, 5).
      upsample_input: whether the model upsamples its LR input with bicubic first.
    """

    def __init__(
        self,
        scale: int = 4,
        num_channels: int = 3,
        filters: tuple[int, int] = (64, 32),
        kernel_sizes: tuple[int, int, int] = (9, 1, 5),
        upsample_input: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.scale = validate_scale("SRCNN", scale)
        validate_positive("SRCNN", num_channels=num_channels)
        if len(filters) != 2 or len(kernel_sizes) != 3:
            raise ValueError(
                "SRCNN needs 2 filter counts and 3 kernel sizes. "
                f"Received: filters={filters!r}, kernel_sizes={kernel_sizes!r}"
            )
        self.num_channels = int(num_channels)
        self.filters = tuple(int(f) for f in filters)
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.upsample_input = bool(upsample_input)
        self.conv1 = keras.layers.Conv2D(self.filters[0], self.kernel_sizes[0], padding="same", activation="relu", name="conv1")
        self.conv2 = keras.layers.Conv2D(self.filters[1], self.kernel_sizes[1], padding="same", activation="relu", name="conv2")
        self.conv3 = keras.layers.Conv2D(self.num_channels, self.kernel_sizes[2], padding="same", name="conv3")

    def call(self, x):
        if self.upsample_input:
            size = tf.shape(x)[1:3] * self.scale
            x = tf.cast(tf.image.resize(x, size, method="bicubic"), self.compute_dtype)
        return to_output_dtype(self.conv3(self.conv2(self.conv1(x))))

    def get_config(self):
        return {
            **super().get_config(),
            "scale": self.scale,
            "num_channels": self.num_channels,
            "filters": list(self.filters),
            "kernel_sizes": list(self.kernel_sizes),
            "upsample_input": self.upsample_input,
        }
