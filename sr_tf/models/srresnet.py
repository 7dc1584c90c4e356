"""SRResNet (Ledig et al., 2017): the SRGAN generator.

Two switches give the variant BasicSR calls MSRResNet (used as the SRResNet baseline in the
ESRGAN paper and for short trainings): `batch_norm=False` (BN hurts PSNR-oriented SR, as EDSR
found) and `input_skip="bilinear"` (the network learns a residual over the upsampled input, so it
starts near the interpolated image instead of from zero). The defaults are the paper's network.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from sr_tf.models.layers import (
    PixelShuffle,
    PReLU,
    conv_after_shuffle,
    small_kaiming,
    to_output_dtype,
    validate_positive,
    validate_scale,
)

INPUT_SKIPS = ("bilinear", "bicubic")


def _prelu(name: str) -> PReLU:
    return PReLU(name=name)


def _bn(name: str) -> keras.layers.BatchNormalization:
    # PyTorch conventions (momentum 0.1 there is 0.9 here, eps 1e-5) so ported weights behave alike.
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


def _maybe_bn(bn: keras.layers.BatchNormalization | None, x, training):
    return x if bn is None else bn(x, training=training)


@keras.saving.register_keras_serializable(package="sr_tf")
class ResidualBlock(keras.layers.Layer):
    """conv3x3-BN-PReLU-conv3x3-BN plus identity (without the BNs when `batch_norm=False`).
    `[N, H, W, F] -> [N, H, W, F]`."""

    def __init__(self, num_feat: int = 64, batch_norm: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.num_feat = int(num_feat)
        self.batch_norm = bool(batch_norm)
        init = "glorot_uniform" if self.batch_norm else small_kaiming()
        self.conv1 = keras.layers.Conv2D(self.num_feat, 3, padding="same", kernel_initializer=init, name="conv1")
        self.bn1 = _bn("bn1") if self.batch_norm else None
        self.act = _prelu("prelu")
        self.conv2 = keras.layers.Conv2D(self.num_feat, 3, padding="same", kernel_initializer=init, name="conv2")
        self.bn2 = _bn("bn2") if self.batch_norm else None

    def call(self, x, training=None):
        y = self.act(_maybe_bn(self.bn1, self.conv1(x), training))
        return x + _maybe_bn(self.bn2, self.conv2(y), training)

    def get_config(self):
        return {**super().get_config(), "num_feat": self.num_feat, "batch_norm": self.batch_norm}


@keras.saving.register_keras_serializable(package="sr_tf")
class SRResNet(keras.Model):
    """`[N, H, W, C] float32 in [0, 1] -> [N, s*H, s*W, C] float32`, any H and W.

    9x9 conv + PReLU head, `num_block` residual blocks, 3x3 conv + BN with a
    global skip from the head, sub-pixel upsampling (x2 stages for 2 and 4, one
    x3 stage for 3; each conv to 4F or 9F channels, pixel shuffle, PReLU), 9x9 conv out.

    Args:
      num_in_ch / num_out_ch: image channels. num_feat: 64. num_block: B (16). scale: 2, 3 or 4.
      batch_norm: the paper's BN layers (True); False drops them (BasicSR's MSRResNet) and starts
        the residual blocks at 0.1x Kaiming initialisation.
      input_skip: None (the paper), "bilinear" (BasicSR's MSRResNet) or "bicubic": add the input
        resized by `scale` to the output (needs num_in_ch == num_out_ch); the last conv then starts
        at 0.1x Kaiming, so the untrained network is close to that interpolation.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 16,
        scale: int = 4,
        batch_norm: bool = True,
        input_skip: str | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_positive("SRResNet", num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat, num_block=num_block)
        if input_skip is not None and input_skip not in INPUT_SKIPS:
            raise ValueError(f"SRResNet: `input_skip` must be None or one of {INPUT_SKIPS}. Received: input_skip={input_skip!r}")
        if input_skip is not None and num_in_ch != num_out_ch:
            raise ValueError(
                "SRResNet: `input_skip` adds the resized input to the output, so num_in_ch must equal num_out_ch. "
                f"Received: num_in_ch={num_in_ch}, num_out_ch={num_out_ch}"
            )
        self.num_in_ch, self.num_out_ch = int(num_in_ch), int(num_out_ch)
        self.num_feat, self.num_block = int(num_feat), int(num_block)
        self.scale = validate_scale("SRResNet", scale)
        self.batch_norm = bool(batch_norm)
        self.input_skip = input_skip
        self.conv_first = keras.layers.Conv2D(self.num_feat, 9, padding="same", name="conv_first")
        self.act_first = _prelu("prelu_first")
        self.body = [ResidualBlock(self.num_feat, self.batch_norm, name=f"block_{i}") for i in range(self.num_block)]
        self.conv_body = keras.layers.Conv2D(self.num_feat, 3, padding="same", name="conv_body")
        self.bn_body = _bn("bn_body") if self.batch_norm else None
        factors = (3,) if self.scale == 3 else (2,) * (self.scale // 2)
        self.upsample = []
        for i, r in enumerate(factors):
            self.upsample += [
                keras.layers.Conv2D(self.num_feat * r * r, 3, padding="same", name=f"conv_up{i + 1}"),
                PixelShuffle(r, name=f"pixel_shuffle{i + 1}"),
                _prelu(f"prelu_up{i + 1}"),
            ]
        last_init = small_kaiming() if self.input_skip else "glorot_uniform"
        self.conv_last = keras.layers.Conv2D(
            self.num_out_ch, 9, padding="same", kernel_initializer=last_init, name="conv_last"
        )

    def build(self, input_shape):
        # Keras' default build traces `call` symbolically, which the last layer's raw TensorFlow
        # ops (`_shuffle_prelu_conv_last`) cannot take; one call on a tiny zero image creates
        # every weight instead, also for an explicit `model.build((None, h, w, c))`.
        self.call(tf.zeros((1, 4, 4, input_shape[-1])))
        self.built = True

    def call(self, x, training=None):
        head = self.act_first(self.conv_first(x))
        feat = head
        for block in self.body:
            feat = block(feat, training=training)
        feat = head + _maybe_bn(self.bn_body, self.conv_body(feat), training)
        stages = [self.upsample[i : i + 3] for i in range(0, len(self.upsample), 3)]
        for conv, shuffle, act in stages[:-1]:
            feat = act(shuffle(conv(feat)))
        conv, shuffle, act = stages[-1]
        out = to_output_dtype(self._shuffle_prelu_conv_last(conv(feat), shuffle.factor, act))
        if self.input_skip is not None:
            shape = tf.shape(x)
            size = tf.stack([shape[1] * self.scale, shape[2] * self.scale])
            out = out + tf.image.resize(tf.cast(x, tf.float32), size, method=self.input_skip)
        return out

    def _shuffle_prelu_conv_last(self, x, factor: int, act: keras.layers.PReLU):
        """`conv_last(act(depth_to_space(x)))`, computed before the shuffle (`conv_after_shuffle`):
        the 9x9 conv to 3 channels at the output resolution is this network's slowest layer in
        its plain form. PReLU is per channel, so it commutes with the shuffle (alpha tiled)."""
        feat = self.num_feat
        for layer in (act, self.conv_last):
            if not layer.built:
                layer.build((None, None, None, feat))
        alpha = tf.tile(tf.reshape(tf.cast(act.alpha, x.dtype), [-1]), [factor * factor])
        x = tf.nn.relu(x) - alpha * tf.nn.relu(-x)
        return conv_after_shuffle(x, self.conv_last.kernel, self.conv_last.bias, factor)

    def get_config(self):
        return {
            **super().get_config(),
            "num_in_ch": self.num_in_ch,
            "num_out_ch": self.num_out_ch,
            "num_feat": self.num_feat,
            "num_block": self.num_block,
            "scale": self.scale,
            "batch_norm": self.batch_norm,
            "input_skip": self.input_skip,
        }
