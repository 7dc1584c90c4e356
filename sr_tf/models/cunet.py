"""CUNet (waifu2x, nagadomi 2018): two cascaded U-Nets with squeeze-and-excitation, x2.

All convolutions are unpadded ("valid"), so the network sees a border it then crops away:
the first U-Net (UNet1) upsamples x2 with a transposed conv, the second (UNet2) refines, and
its output plus UNet1's output cropped by 20 pixels is the result. The blocks here are shared
with Real-CUGAN's `UpCunet` (`sr_tf.models.upcunet`), which grew out of this network.

As waifu2x-ncnn-vulkan runs it, the input is padded by 18 pixels on every side, repeating the
edge (plus one more row/column when H/W is odd, the U-Net halves the size twice), and the
output cropped to `2H x 2W` from the top-left corner. `CUNet` does that itself, so it maps
any `[N, H, W, 3]` to `[N, 2H, 2W, 3]`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from sr_tf.models.layers import border_pad, crop_border, to_output_dtype, validate_positive

LRELU_SLOPE = 0.1
SE_REDUCTION = 8
UNET2_SKIP_CROP = 20  # UNet1's output is 20 pixels larger than UNet2's on every side


def _lrelu(x):
    return tf.nn.leaky_relu(x, LRELU_SLOPE)


def _valid_conv(filters: int, kernel: int, name: str, strides: int = 1) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(filters, kernel, strides=strides, padding="valid", name=name)


def _up(filters: int, kernel: int, strides: int, name: str) -> keras.layers.Conv2DTranspose:
    return keras.layers.Conv2DTranspose(filters, kernel, strides=strides, padding="valid", name=name)


@keras.saving.register_keras_serializable(package="sr_tf")
class SEBlock(keras.layers.Layer):
    """Squeeze-and-excitation: `x * sigmoid(W2 relu(W1 mean_hw(x)))`, `[N, H, W, C] -> [N, H, W, C]`."""

    def __init__(self, channels: int, reduction: int = SE_REDUCTION, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.reduction = int(channels), int(reduction)
        self.squeeze = keras.layers.Dense(max(self.channels // self.reduction, 1), name="squeeze")
        self.excite = keras.layers.Dense(self.channels, name="excite")

    def call(self, x):
        pooled = tf.reduce_mean(x, axis=[1, 2])
        weights = tf.sigmoid(self.excite(tf.nn.relu(self.squeeze(pooled))))
        return x * weights[:, None, None, :]

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "reduction": self.reduction}


@keras.saving.register_keras_serializable(package="sr_tf")
class UNetConv(keras.layers.Layer):
    """Two unpadded 3x3 convs with LeakyReLU(0.1), then SE if `se`: `[N, H, W, *] -> [N, H-4, W-4, out]`."""

    def __init__(self, mid_channels: int, out_channels: int, se: bool, **kwargs):
        super().__init__(**kwargs)
        self.mid_channels, self.out_channels, self.se = int(mid_channels), int(out_channels), bool(se)
        self.conv_a = _valid_conv(self.mid_channels, 3, "conv_a")
        self.conv_b = _valid_conv(self.out_channels, 3, "conv_b")
        self.seblock = SEBlock(self.out_channels, name="se") if self.se else None

    def call(self, x):
        x = _lrelu(self.conv_b(_lrelu(self.conv_a(x))))
        return self.seblock(x) if self.seblock is not None else x

    def get_config(self):
        return {**super().get_config(), "mid_channels": self.mid_channels, "out_channels": self.out_channels,
                "se": self.se}


# How UNet1 upsamples at its end: transposed conv (kernel, stride, crop of each side).
UNET1_UPSAMPLING = {2: (4, 2, 3), 3: (5, 3, 2)}


@keras.saving.register_keras_serializable(package="sr_tf")
class UNet1(keras.layers.Layer):
    """The first U-Net (one level) ending in an upsampling transposed conv.

    `[N, H, W, C] -> [N, f(H), f(W), out_channels]` with `f(n) = 2n - 32` (`factor` 2) or
    `3n - 44` (`factor` 3); H - 4 must be even.
    """

    def __init__(self, out_channels: int, num_feat: int = 32, se: bool = True, factor: int = 2, **kwargs):
        super().__init__(**kwargs)
        if factor not in UNET1_UPSAMPLING:
            raise ValueError(f"UNet1: factor must be one of {sorted(UNET1_UPSAMPLING)}. Received: factor={factor!r}")
        self.out_channels, self.num_feat, self.se, self.factor = int(out_channels), int(num_feat), bool(se), factor
        f = self.num_feat
        self.conv1 = UNetConv(f, 2 * f, se=False, name="conv1")
        self.conv1_down = _valid_conv(2 * f, 2, "conv1_down", strides=2)
        self.conv2 = UNetConv(4 * f, 2 * f, se=self.se, name="conv2")
        self.conv2_up = _up(2 * f, 2, 2, "conv2_up")
        self.conv3 = _valid_conv(2 * f, 3, "conv3")
        kernel, stride, self.bottom_crop = UNET1_UPSAMPLING[factor]
        self.conv_bottom = _up(self.out_channels, kernel, stride, "conv_bottom")

    def call(self, x):
        x1 = self.conv1(x)
        x2 = _lrelu(self.conv2_up(self.conv2(_lrelu(self.conv1_down(x1)))))
        x3 = _lrelu(self.conv3(crop_border(x1, 4) + x2))
        return crop_border(self.conv_bottom(x3), self.bottom_crop)

    def get_config(self):
        return {**super().get_config(), "out_channels": self.out_channels, "num_feat": self.num_feat,
                "se": self.se, "factor": self.factor}


@keras.saving.register_keras_serializable(package="sr_tf")
class UNet2(keras.layers.Layer):
    """The second U-Net (two levels): `[N, H, W, C] -> [N, H-40, W-40, out_channels]`; H - 4 must be a multiple of 4."""

    def __init__(self, out_channels: int, num_feat: int = 32, se: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.out_channels, self.num_feat, self.se = int(out_channels), int(num_feat), bool(se)
        f = self.num_feat
        self.conv1 = UNetConv(f, 2 * f, se=False, name="conv1")
        self.conv1_down = _valid_conv(2 * f, 2, "conv1_down", strides=2)
        self.conv2 = UNetConv(2 * f, 4 * f, se=self.se, name="conv2")
        self.conv2_down = _valid_conv(4 * f, 2, "conv2_down", strides=2)
        self.conv3 = UNetConv(8 * f, 4 * f, se=self.se, name="conv3")
        self.conv3_up = _up(4 * f, 2, 2, "conv3_up")
        self.conv4 = UNetConv(2 * f, 2 * f, se=self.se, name="conv4")
        self.conv4_up = _up(2 * f, 2, 2, "conv4_up")
        self.conv5 = _valid_conv(2 * f, 3, "conv5")
        self.conv_bottom = _valid_conv(self.out_channels, 3, "conv_bottom")

    def call(self, x):
        x1 = self.conv1(x)
        x2 = self.conv2(_lrelu(self.conv1_down(x1)))
        x3 = self.conv3(_lrelu(self.conv2_down(x2)))
        x3 = _lrelu(self.conv3_up(x3))
        x4 = _lrelu(self.conv4_up(self.conv4(crop_border(x2, 4) + x3)))
        x5 = _lrelu(self.conv5(crop_border(x1, 16) + x4))
        return self.conv_bottom(x5)

    def get_config(self):
        return {**super().get_config(), "out_channels": self.out_channels, "num_feat": self.num_feat, "se": self.se}


def pad_for_unet(x: tf.Tensor, prepadding: int, multiple: int, border: str) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Pads by `prepadding` on every side, plus enough at the bottom/right for H and W to be multiples of
    `multiple`, as the ncnn programs do around these unpadded networks (`border`: "reflect" or
    "replicate"). Returns the padded tensor and the original H and W (scalar int32 tensors)."""
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    bottom = prepadding + (-h) % multiple
    right = prepadding + (-w) % multiple
    return border_pad(x, prepadding, bottom, prepadding, right, border), h, w


@keras.saving.register_keras_serializable(package="sr_tf")
class CUNet(keras.Model):
    """waifu2x's CUNet x2 (`models-cunet` scale2.0x): `[N, H, W, C] float32 in [0, 1] -> [N, 2H, 2W, C]`, any H and W.

    Args:
      num_in_ch / num_out_ch: image channels (3).
      num_feat: width of the first convs; the U-Nets use 1x, 2x, 4x and 8x of it (published: 32).
    """

    scale = 2
    prepadding = 18  # the least padding for which the unpadded convs still give 2H x 2W pixels

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 32, **kwargs):
        super().__init__(**kwargs)
        validate_positive("CUNet", num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat)
        self.num_in_ch, self.num_out_ch, self.num_feat = int(num_in_ch), int(num_out_ch), int(num_feat)
        self.unet1 = UNet1(self.num_out_ch, self.num_feat, se=True, factor=2, name="unet1")
        self.unet2 = UNet2(self.num_out_ch, self.num_feat, se=True, name="unet2")

    def call(self, x):
        padded, h, w = pad_for_unet(x, self.prepadding, 2, "replicate")
        x1 = self.unet1(padded)
        out = self.unet2(x1) + crop_border(x1, UNET2_SKIP_CROP)
        return to_output_dtype(out[:, : 2 * h, : 2 * w, :])

    def get_config(self):
        return {
            **super().get_config(),
            "num_in_ch": self.num_in_ch,
            "num_out_ch": self.num_out_ch,
            "num_feat": self.num_feat,
        }
