"""SRResNet (Ledig et al., 2017): the SRGAN generator."""

from __future__ import annotations

import keras

from sr_tf.models.layers import PixelShuffle, to_output_dtype, validate_positive, validate_scale


def _prelu(name: str) -> keras.layers.PReLU:
    return keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(0.25), shared_axes=[1, 2], name=name)


def _bn(name: str) -> keras.layers.BatchNormalization:
    # PyTorch conventions (momentum 0.1 there is 0.9 here, eps 1e-5) so ported weights behave alike.
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


@keras.saving.register_keras_serializable(package="sr_tf")
class ResidualBlock(keras.layers.Layer):
    """conv3x3-BN-PReLU-conv3x3-BN plus identity. `[N, H, W, F] -> [N, H, W, F]`."""

    def __init__(self, num_feat: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.num_feat = int(num_feat)
        self.conv1 = keras.layers.Conv2D(self.num_feat, 3, padding="same", name="conv1")
        self.bn1 = _bn("bn1")
        self.act = _prelu("prelu")
        self.conv2 = keras.layers.Conv2D(self.num_feat, 3, padding="same", name="conv2")
        self.bn2 = _bn("bn2")

    def call(self, x, training=None):
        y = self.act(self.bn1(self.conv1(x), training=training))
        return x + self.bn2(self.conv2(y), training=training)

    def get_config(self):
        return {**super().get_config(), "num_feat": self.num_feat}


@keras.saving.register_keras_serializable(package="sr_tf")
class SRResNet(keras.Model):
    """`[N, H, W, C] float32 in [0, 1] -> [N, s*H, s*W, C] float32`, any H and W.

    9x9 conv + PReLU head, `num_block` residual blocks, 3x3 conv + BN with a
    global skip from the head, sub-pixel upsampling (x2 stages for 2 and 4, one
    x3 stage for 3; each conv to 4F or 9F channels, pixel shuffle, PReLU), 9x9 conv out.

    Args:
      num_in_ch / num_out_ch: image channels. num_feat: 64. num_block: B (16). scale: 2, 3 or 4.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_block: int = 16,
        scale: int = 4,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_positive("SRResNet", num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat, num_block=num_block)
        self.num_in_ch, self.num_out_ch = int(num_in_ch), int(num_out_ch)
        self.num_feat, self.num_block = int(num_feat), int(num_block)
        self.scale = validate_scale("SRResNet", scale)
        self.conv_first = keras.layers.Conv2D(self.num_feat, 9, padding="same", name="conv_first")
        self.act_first = _prelu("prelu_first")
        self.body = [ResidualBlock(self.num_feat, name=f"block_{i}") for i in range(self.num_block)]
        self.conv_body = keras.layers.Conv2D(self.num_feat, 3, padding="same", name="conv_body")
        self.bn_body = _bn("bn_body")
        factors = (3,) if self.scale == 3 else (2,) * (self.scale // 2)
        self.upsample = []
        for i, r in enumerate(factors):
            self.upsample += [
                keras.layers.Conv2D(self.num_feat * r * r, 3, padding="same", name=f"conv_up{i + 1}"),
                PixelShuffle(r, name=f"pixel_shuffle{i + 1}"),
                _prelu(f"prelu_up{i + 1}"),
            ]
        self.conv_last = keras.layers.Conv2D(self.num_out_ch, 9, padding="same", name="conv_last")

    def call(self, x, training=None):
        head = self.act_first(self.conv_first(x))
        feat = head
        for block in self.body:
            feat = block(feat, training=training)
        feat = head + self.bn_body(self.conv_body(feat), training=training)
        for layer in self.upsample:
            feat = layer(feat)
        return to_output_dtype(self.conv_last(feat))

    def get_config(self):
        return {
            **super().get_config(),
            "num_in_ch": self.num_in_ch,
            "num_out_ch": self.num_out_ch,
            "num_feat": self.num_feat,
            "num_block": self.num_block,
            "scale": self.scale,
        }
