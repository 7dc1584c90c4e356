"""The VGG-style discriminator of SRGAN (Ledig et al.) and ESRGAN (Wang et al.)."""

from __future__ import annotations

import keras
import tensorflow as tf

from sr_tf.models.layers import validate_positive

LRELU_SLOPE = 0.2


@keras.saving.register_keras_serializable(package="sr_tf")
class VGGStyleDiscriminator(keras.Model):
    """Conv-BN-LeakyReLU stages with strided downsampling and a dense head, for a fixed patch size.

    `[N, P, P, C] float32 in [0, 1] -> [N, 1]` logits (no sigmoid).

    Stage i has `num_feat * min(2**i, 8)` channels: a 3x3 stride-1 conv then a
    `strided_kernel_size` stride-2 conv, each with BN and LeakyReLU(0.2) (the
    very first conv has no BN). After `num_stages` stages the P/2**num_stages
    square map is flattened into Dense(dense_units) + LeakyReLU + Dense(1).

    Presets: ESRGAN `(input_size=128, num_stages=5, dense_units=100, strided_kernel_size=4)`,
    SRGAN `(input_size=96, num_stages=4, dense_units=1024, strided_kernel_size=3)`.
    """

    def __init__(
        self,
        input_size: int = 128,
        num_in_ch: int = 3,
        num_feat: int = 64,
        num_stages: int = 5,
        dense_units: int = 100,
        strided_kernel_size: int = 4,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_positive(
            "VGGStyleDiscriminator", input_size=input_size, num_in_ch=num_in_ch, num_feat=num_feat,
            num_stages=num_stages, dense_units=dense_units, strided_kernel_size=strided_kernel_size,
        )
        if input_size % (2**num_stages):
            raise ValueError(
                f"VGGStyleDiscriminator: input_size must be divisible by 2**num_stages={2**num_stages}. "
                f"Received: input_size={input_size}, num_stages={num_stages}"
            )
        self.input_size, self.num_in_ch, self.num_feat = int(input_size), int(num_in_ch), int(num_feat)
        self.num_stages, self.dense_units = int(num_stages), int(dense_units)
        self.strided_kernel_size = int(strided_kernel_size)
        self.convs0, self.bns0, self.convs1, self.bns1 = [], [], [], []
        for i in range(self.num_stages):
            ch = self.num_feat * min(2**i, 8)
            self.convs0.append(keras.layers.Conv2D(ch, 3, padding="same", use_bias=(i == 0), name=f"conv{i}_0"))
            if i > 0:  # the first conv has a bias and no BN
                self.bns0.append(keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"bn{i}_0"))
            self.convs1.append(
                keras.layers.Conv2D(ch, self.strided_kernel_size, strides=2, padding="same", use_bias=False, name=f"conv{i}_1")
            )
            self.bns1.append(keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"bn{i}_1"))
        self.dense1 = keras.layers.Dense(self.dense_units, name="linear1")
        self.dense2 = keras.layers.Dense(1, name="linear2")

    def call(self, x, training=None):
        h, w = x.shape[1], x.shape[2]
        if (h is not None and h != self.input_size) or (w is not None and w != self.input_size):
            raise ValueError(
                f"VGGStyleDiscriminator was built for {self.input_size}x{self.input_size} patches. "
                f"Received: input_shape={tuple(x.shape)}"
            )
        tf.debugging.assert_equal(
            tf.shape(x)[1:3], [self.input_size, self.input_size],
            message=f"VGGStyleDiscriminator expects {self.input_size}x{self.input_size} patches",
        )
        for i in range(self.num_stages):
            x = self.convs0[i](x)
            if i > 0:
                x = self.bns0[i - 1](x, training=training)
            x = tf.nn.leaky_relu(x, LRELU_SLOPE)
            x = tf.nn.leaky_relu(self.bns1[i](self.convs1[i](x), training=training), LRELU_SLOPE)
        side = self.input_size // 2**self.num_stages
        x = tf.reshape(x, [-1, side * side * self.num_feat * min(2 ** (self.num_stages - 1), 8)])
        x = tf.nn.leaky_relu(self.dense1(x), LRELU_SLOPE)
        return tf.cast(self.dense2(x), "float32")

    def get_config(self):
        return {
            **super().get_config(),
            "input_size": self.input_size,
            "num_in_ch": self.num_in_ch,
            "num_feat": self.num_feat,
            "num_stages": self.num_stages,
            "dense_units": self.dense_units,
            "strided_kernel_size": self.strided_kernel_size,
        }
