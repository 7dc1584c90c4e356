"""Real-ESRGAN's U-Net discriminator with spectral normalisation (Wang et al., 2021)."""

from __future__ import annotations

import keras
import tensorflow as tf

from sr_tf.models.layers import pad_to_multiple, validate_positive

LRELU_SLOPE = 0.2


def _sn_conv(filters: int, kernel: int, name: str, strides: int = 1) -> keras.layers.Layer:
    conv = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")
    return keras.layers.SpectralNormalization(conv, power_iterations=1, name=name)


@keras.saving.register_keras_serializable(package="sr_tf")
class UNetDiscriminatorSN(keras.Model):
    """Per-pixel realness logits. `[N, H, W, C] float32 in [0, 1] -> [N, H, W, 1]`, any H and W.

    Three stride-2 4x4 spectral-normalised convs down, three bilinear x2 + 3x3
    convs up with additive skips, two more 3x3 convs, a 3x3 conv to one channel.
    Inputs whose sides are not multiples of 8 are padded (symmetric) and the
    output is cropped back, so any size works.

    Args:
      num_in_ch: image channels (3). num_feat: base channels (64). skip_connection: U-Net skips (True).
    """

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, skip_connection: bool = True, **kwargs):
        super().__init__(**kwargs)
        validate_positive("UNetDiscriminatorSN", num_in_ch=num_in_ch, num_feat=num_feat)
        self.num_in_ch, self.num_feat, self.skip_connection = int(num_in_ch), int(num_feat), bool(skip_connection)
        nf = self.num_feat
        self.conv0 = keras.layers.Conv2D(nf, 3, padding="same", name="conv0")
        self.down = [_sn_conv(nf * 2, 4, "conv1", 2), _sn_conv(nf * 4, 4, "conv2", 2), _sn_conv(nf * 8, 4, "conv3", 2)]
        self.up = [_sn_conv(nf * 4, 3, "conv4"), _sn_conv(nf * 2, 3, "conv5"), _sn_conv(nf, 3, "conv6")]
        self.conv7 = _sn_conv(nf, 3, "conv7")
        self.conv8 = _sn_conv(nf, 3, "conv8")
        self.conv9 = keras.layers.Conv2D(1, 3, padding="same", name="conv9")
        self.upsample = keras.layers.UpSampling2D(2, interpolation="bilinear", name="upsample")

    def call(self, x, training=None):
        x, h, w = pad_to_multiple(x, 8)
        x0 = tf.nn.leaky_relu(self.conv0(x), LRELU_SLOPE)
        skips = [x0]
        feat = x0
        for conv in self.down:
            feat = tf.nn.leaky_relu(conv(feat, training=training), LRELU_SLOPE)
            skips.append(feat)
        skips.pop()  # the deepest map is not a skip
        for conv in self.up:
            feat = tf.nn.leaky_relu(conv(self.upsample(feat), training=training), LRELU_SLOPE)
            skip = skips.pop()
            if self.skip_connection:
                feat = feat + skip
        feat = tf.nn.leaky_relu(self.conv7(feat, training=training), LRELU_SLOPE)
        feat = tf.nn.leaky_relu(self.conv8(feat, training=training), LRELU_SLOPE)
        return tf.cast(self.conv9(feat)[:, :h, :w, :], "float32")

    def get_config(self):
        return {
            **super().get_config(),
            "num_in_ch": self.num_in_ch,
            "num_feat": self.num_feat,
            "skip_connection": self.skip_connection,
        }
