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
    border_pad,
    small_kaiming,
    to_output_dtype,
    validate_positive,
    validate_scale,
)

RESIDUAL_SCALE = 0.2
SCALES = (1, 2, 3, 4, 8)
BASICSR_UNSHUFFLE = {1: 4, 2: 2}  # BasicSR's x1 / x2 run the x4 network on the unshuffled input
UPSAMPLING = {1: (), 2: (2,), 3: (3,), 4: (2, 2), 8: (2, 2, 2)}  # scale * unshuffle -> nearest stages
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
        # Not a 1x1 conv with the add fused (`_FusedConv2D` BiasAdd + Add) in bfloat16: that form was
        # faster but oneDNN's fused add read memory it did not own (NaN tiles, segfaults, 1 call in ~200).
        return out * RESIDUAL_SCALE + x

    def get_config(self):
        return {**super().get_config(), "num_feat": self.num_feat, "num_grow_ch": self.num_grow_ch}


@keras.saving.register_keras_serializable(package="sr_tf")
class RRDBNet(keras.Model):
    """ESRGAN's generator. `[N, H, W, C] float32 in [0, 1] -> [N, s*H, s*W, C] float32`, any H and W.

    conv_first, `num_block` RRDBs, conv_body + skip, `log2(scale * unshuffle)` (nearest x2
    upsample, 3x3 conv, LeakyReLU 0.2) stages (one x3 stage for x3), conv_hr, conv_last.
    Scale 4 (published) has two stages. BasicSR's x2 and x1 (published by Real-ESRGAN) run the
    same x4 network after a 2x / 4x pixel unshuffle of the input (input padded at the bottom/right
    by reflection to a multiple of the factor, as Real-ESRGAN's inference does; output cropped
    back). Old-ESRGAN community files also have x1 (no stage), x2 (one stage) and x8 (three).

    Args:
      num_in_ch / num_out_ch: image channels (3).
      num_feat: trunk channels (64). num_block: RRDBs (23; 6 for the anime model).
      num_grow_ch: growth channels of the dense blocks (32).
      scale: 1, 2, 3, 4 or 8.
      unshuffle: pixel-unshuffle factor of the input, 1, 2 or 4 (`scale * unshuffle` must be 1,
        2, 3, 4 or 8, the upsampling stages). Default: BasicSR's, 4 for x1, 2 for x2, else 1.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
        scale: int = 4,
        unshuffle: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_positive(
            "RRDBNet", num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat,
            num_block=num_block, num_grow_ch=num_grow_ch,
        )
        self.num_in_ch, self.num_out_ch = int(num_in_ch), int(num_out_ch)
        self.num_feat, self.num_block, self.num_grow_ch = int(num_feat), int(num_block), int(num_grow_ch)
        self.scale = validate_scale("RRDBNet", scale, SCALES)
        self.unshuffle = BASICSR_UNSHUFFLE.get(self.scale, 1) if unshuffle is None else unshuffle
        if self.unshuffle not in (1, 2, 4) or self.scale * self.unshuffle not in UPSAMPLING:
            raise ValueError(
                "RRDBNet: `unshuffle` must be 1, 2 or 4 with scale * unshuffle in "
                f"{tuple(UPSAMPLING)}. Received: unshuffle={unshuffle!r} (scale={scale!r})"
            )
        self.upsample_factors = UPSAMPLING[self.scale * self.unshuffle]
        self.conv_first = _conv(self.num_feat, "conv_first")
        self.body = [RRDB(self.num_feat, self.num_grow_ch, name=f"rrdb_{i}") for i in range(self.num_block)]
        self.conv_body = _conv(self.num_feat, "conv_body")
        self.conv_ups = [_conv(self.num_feat, f"conv_up{i + 1}") for i in range(len(self.upsample_factors))]
        self.conv_hr = _conv(self.num_feat, "conv_hr")
        self.conv_last = _conv(self.num_out_ch, "conv_last")

    def build(self, input_shape):
        first_in = self.num_in_ch * self.unshuffle**2  # conv_first sees the pixel-unshuffled input
        self.conv_first.build((None, None, None, first_in))
        feat = (None, None, None, self.num_feat)
        for layer in [*self.body, self.conv_body, *self.conv_ups, self.conv_hr, self.conv_last]:
            layer.build(feat)
        self.built = True

    def call(self, x):
        f = self.unshuffle
        if f > 1:
            h, w = tf.shape(x)[1], tf.shape(x)[2]
            x = border_pad(x, 0, (-h) % f, 0, (-w) % f, "reflect")
            feat = tf.nn.space_to_depth(x, f)
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
        if f > 1:
            out = out[:, : h * self.scale, : w * self.scale, :]
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
            "unshuffle": self.unshuffle,
        }
