"""RRDBNet (ESRGAN, Wang et al. 2018), as published in BasicSR / Real-ESRGAN.

Residual-in-Residual Dense Blocks (RRDB): each RRDB holds three Residual
Dense Blocks (RDB) of five 3x3 convs with dense connections; both levels
scale their residual branch by 0.2. The RDB convs start at 0.1x a Kaiming
normal initialisation, which keeps the very deep network stable early on.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from sr_tf.models.layers import (
    pad_to_multiple,
    small_kaiming,
    to_output_dtype,
    validate_positive,
    validate_scale,
)

RESIDUAL_SCALE = 0.2
LRELU_SLOPE = 0.2


def _conv(filters: int, name: str, small_init: bool = False) -> keras.layers.Conv2D:
    if small_init:
        return keras.layers.Conv2D(filters, 3, padding="same", kernel_initializer=small_kaiming(), name=name)
    return keras.layers.Conv2D(filters, 3, padding="same", name=name)


@keras.saving.register_keras_serializable(package="sr_tf")
class ResidualDenseBlock(keras.layers.Layer):
    """Five densely connected 3x3 convs; `x + 0.2 * conv5(...)`. `[N, H, W, F] -> [N, H, W, F]`."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.num_feat, self.num_grow_ch = int(num_feat), int(num_grow_ch)
        self.convs = [_conv(self.num_grow_ch, f"conv{i}", small_init=True) for i in range(1, 5)]
        self.conv5 = _conv(self.num_feat, "conv5", small_init=True)

    def build(self, input_shape):
        # Building the convs directly spares Keras a symbolic trace of `call` per nesting level
        # (23 RRDBs of 3 RDBs: ~30 s on the first call of the published RRDBNet otherwise).
        shape = list(input_shape)
        for i, conv in enumerate([*self.convs, self.conv5]):
            conv.build((*shape[:-1], self.num_feat + i * self.num_grow_ch))
        self.built = True

    def call(self, x):
        features = [x]
        for conv in self.convs:
            y = conv(tf.concat(features, axis=-1) if len(features) > 1 else x)
            features.append(tf.nn.leaky_relu(y, LRELU_SLOPE))
        return self.conv5(tf.concat(features, axis=-1)) * RESIDUAL_SCALE + x

    def get_config(self):
        return {**super().get_config(), "num_feat": self.num_feat, "num_grow_ch": self.num_grow_ch}


@keras.saving.register_keras_serializable(package="sr_tf")
class RRDB(keras.layers.Layer):
    """Three RDBs in sequence, `x + 0.2 * rdb3(rdb2(rdb1(x)))`. `[N, H, W, F] -> [N, H, W, F]`."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.num_feat, self.num_grow_ch = int(num_feat), int(num_grow_ch)
        self.rdbs = [ResidualDenseBlock(self.num_feat, self.num_grow_ch, name=f"rdb{i}") for i in range(1, 4)]

    def build(self, input_shape):
        for rdb in self.rdbs:
            rdb.build(input_shape)
        self.built = True

    def call(self, x):
        out = x
        for rdb in self.rdbs:
            out = rdb(out)
        return out * RESIDUAL_SCALE + x

    def get_config(self):
        return {**super().get_config(), "num_feat": self.num_feat, "num_grow_ch": self.num_grow_ch}


@keras.saving.register_keras_serializable(package="sr_tf")
class RRDBNet(keras.Model):
    """ESRGAN's generator. `[N, H, W, C] float32 in [0, 1] -> [N, s*H, s*W, C] float32`, any H and W.

    Scale 4 (published): conv_first, `num_block` RRDBs, conv_body + skip, two
    (nearest x2 upsample, 3x3 conv, LeakyReLU 0.2) stages, conv_hr, conv_last.
    Scale 2 (published by Real-ESRGAN): the same network after a 2x pixel
    unshuffle of the input (input padded to even size, output cropped back).
    Scale 3 (not published): one nearest x3 stage instead of the two x2 stages.

    Args:
      num_in_ch / num_out_ch: image channels (3).
      num_feat: trunk channels (64). num_block: RRDBs (23; 6 for the anime model).
      num_grow_ch: growth channels of the dense blocks (32).
      scale: 2, 3 or 4.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
        scale: int = 4,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_positive(
            "RRDBNet", num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat,
            num_block=num_block, num_grow_ch=num_grow_ch,
        )
        self.num_in_ch, self.num_out_ch = int(num_in_ch), int(num_out_ch)
        self.num_feat, self.num_block, self.num_grow_ch = int(num_feat), int(num_block), int(num_grow_ch)
        self.scale = validate_scale("RRDBNet", scale)
        self.conv_first = _conv(self.num_feat, "conv_first")
        self.body = [RRDB(self.num_feat, self.num_grow_ch, name=f"rrdb_{i}") for i in range(self.num_block)]
        self.conv_body = _conv(self.num_feat, "conv_body")
        self.upsample_factors = (3,) if self.scale == 3 else (2, 2)
        self.conv_ups = [_conv(self.num_feat, f"conv_up{i + 1}") for i in range(len(self.upsample_factors))]
        self.conv_hr = _conv(self.num_feat, "conv_hr")
        self.conv_last = _conv(self.num_out_ch, "conv_last")

    def build(self, input_shape):
        first_in = self.num_in_ch * (4 if self.scale == 2 else 1)  # x2 works on the pixel-unshuffled input
        self.conv_first.build((None, None, None, first_in))
        feat = (None, None, None, self.num_feat)
        for layer in [*self.body, self.conv_body, *self.conv_ups, self.conv_hr, self.conv_last]:
            layer.build(feat)
        self.built = True

    def call(self, x):
        if self.scale == 2:
            x, h, w = pad_to_multiple(x, 2)
            feat = tf.nn.space_to_depth(x, 2)
        else:
            feat = x
        feat = self.conv_first(feat)
        body = feat
        for block in self.body:
            body = block(body)
        feat = feat + self.conv_body(body)
        for factor, conv in zip(self.upsample_factors, self.conv_ups, strict=True):
            feat = tf.repeat(tf.repeat(feat, factor, axis=1), factor, axis=2)
            feat = tf.nn.leaky_relu(conv(feat), LRELU_SLOPE)
        out = self.conv_last(tf.nn.leaky_relu(self.conv_hr(feat), LRELU_SLOPE))
        if self.scale == 2:
            out = out[:, : h * 2, : w * 2, :]
        return to_output_dtype(out)

    def get_config(self):
        return {
            **super().get_config(),
            "num_in_ch": self.num_in_ch,
            "num_out_ch": self.num_out_ch,
            "num_feat": self.num_feat,
            "num_block": self.num_block,
            "num_grow_ch": self.num_grow_ch,
            "scale": self.scale,
        }
