"""SPAN (Wan et al. 2024, "Swift Parameter-free Attention Network"), winner of NTIRE 2024's efficient SR.

Six parameter-free attention blocks (SPAB): three 3x3 convs with SiLU after the first two;
the attention map `sigmoid(c3) - 0.5` (no parameters) multiplies `c3 + x`. A 1x1 conv mixes
the first features, the last block's output (after one more conv), the first block's output
and the last block's first activation; a 3x3 conv and a pixel shuffle upsample. The input is
normalised inside the network (`(x - rgb_mean) * img_range`); the output is not denormalised.

The published training uses re-parameterisable `Conv3XC` blocks (1x1 -> 3x3 -> 1x1 plus a
skip, fused into one 3x3 conv for inference). The released weights are the fused 3x3 convs,
which is what this model holds; retraining trains those 3x3 convs directly.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from sr_tf.models.layers import PixelShuffle, to_output_dtype, validate_positive, validate_scale

NUM_BLOCKS = 6
SCALES = (1, 2, 3, 4, 8)  # published 2 and 4; community checkpoints also x1 and x8
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def _conv(filters: int, name: str, kernel: int = 3) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(filters, kernel, padding="same", name=name)


@keras.saving.register_keras_serializable(package="sr_tf")
class SPAB(keras.layers.Layer):
    """One attention block: `[N, H, W, C] -> ([N, H, W, C] output, [N, H, W, C] first activation)`."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.c1, self.c2, self.c3 = (_conv(self.channels, f"c{i}_r") for i in (1, 2, 3))

    def call(self, x):
        out1 = tf.nn.silu(self.c1(x))
        out3 = self.c3(tf.nn.silu(self.c2(out1)))
        attention = tf.sigmoid(out3) - 0.5
        return (out3 + x) * attention, out1

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


@keras.saving.register_keras_serializable(package="sr_tf")
class SPAN(keras.Model):
    """`[N, H, W, C] float32 in [0, 1] -> [N, s*H, s*W, C] float32 (about [0, 1])`, any H and W.

    Args:
      num_in_ch / num_out_ch: image channels (3).
      feature_channels: width of every conv (published: 48; 52 for the "ch52" variants).
      upscale: 1, 2, 3, 4 or 8.
      img_range: the normalised input is `(x - rgb_mean) * img_range` (published: 255; some
        community weights use 1).
      rgb_mean: per-channel mean subtracted first (DIV2K's, as published).
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        feature_channels: int = 48,
        upscale: int = 4,
        img_range: float = 255.0,
        rgb_mean: tuple[float, ...] = DIV2K_RGB_MEAN,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_positive("SPAN", num_in_ch=num_in_ch, num_out_ch=num_out_ch, feature_channels=feature_channels)
        if len(rgb_mean) != num_in_ch:
            raise ValueError(f"SPAN: `rgb_mean` needs one value per input channel. Received: rgb_mean={rgb_mean!r}")
        if not float(img_range) > 0:
            raise ValueError(f"SPAN: `img_range` must be positive. Received: img_range={img_range!r}")
        self.num_in_ch, self.num_out_ch = int(num_in_ch), int(num_out_ch)
        self.feature_channels = int(feature_channels)
        self.upscale = validate_scale("SPAN", upscale, SCALES)
        self.img_range = float(img_range)
        self.rgb_mean = tuple(float(v) for v in rgb_mean)
        c = self.feature_channels
        self.conv_1 = _conv(c, "conv_1")
        self.blocks = [SPAB(c, name=f"block_{i + 1}") for i in range(NUM_BLOCKS)]
        self.conv_2 = _conv(c, "conv_2")
        self.conv_cat = _conv(c, "conv_cat", kernel=1)
        self.conv_up = _conv(self.num_out_ch * self.upscale**2, "upsampler")
        self.shuffle = PixelShuffle(self.upscale, name="pixel_shuffle")

    @property
    def scale(self) -> int:
        return self.upscale

    def call(self, x):
        x = (x - tf.constant(self.rgb_mean, x.dtype)) * self.img_range
        first = self.conv_1(x)
        out, out_b1 = first, None
        for block in self.blocks:
            out, act = block(out)
            out_b1 = out if out_b1 is None else out_b1
        features = tf.concat([first, self.conv_2(out), out_b1, act], axis=-1)
        return to_output_dtype(self.shuffle(self.conv_up(self.conv_cat(features))))

    def get_config(self):
        return {
            **super().get_config(),
            "num_in_ch": self.num_in_ch,
            "num_out_ch": self.num_out_ch,
            "feature_channels": self.feature_channels,
            "upscale": self.upscale,
            "img_range": self.img_range,
            "rgb_mean": list(self.rgb_mean),
        }
