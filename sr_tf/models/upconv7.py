"""UpConv7 (waifu2x, nagadomi 2016): six unpadded 3x3 convs and one x2 transposed conv.

`upconv_7_anime_style_art_rgb` and `upconv_7_photo` are this network with different weights.
The convs shrink the image by 12 pixels, so waifu2x-ncnn-vulkan pads the input by 7 pixels on
every side, repeating the edge (one more row/column when H/W is odd), and crops the output to
`2H x 2W` from the top-left; `UpConv7` does both, so it maps any `[N, H, W, 3]` to `[N, 2H, 2W, 3]`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from sr_tf.models.cunet import LRELU_SLOPE, pad_for_unet
from sr_tf.models.layers import crop_border, to_output_dtype, validate_positive

WIDTHS = (1, 2, 4, 8, 8, 16)  # conv widths in units of num_feat (published: 16 .. 256)


@keras.saving.register_keras_serializable(package="sr_tf")
class UpConv7(keras.Model):
    """`[N, H, W, C] float32 in [0, 1] -> [N, 2H, 2W, C] float32 (about [0, 1])`, any H and W.

    Args:
      num_in_ch / num_out_ch: image channels (3).
      num_feat: width of the first conv; the others are 2, 4, 8, 8 and 16 times it (published: 16).
    """

    scale = 2
    prepadding = 7  # the least padding for which the unpadded convs still give 2H x 2W pixels

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 16, **kwargs):
        super().__init__(**kwargs)
        validate_positive("UpConv7", num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat)
        self.num_in_ch, self.num_out_ch, self.num_feat = int(num_in_ch), int(num_out_ch), int(num_feat)
        self.convs = [
            keras.layers.Conv2D(k * self.num_feat, 3, padding="valid", name=f"conv{i + 1}")
            for i, k in enumerate(WIDTHS)
        ]
        # kernel 4, stride 2, 3 pixels cropped on each side: PyTorch's ConvTranspose2d(..., 4, 2, 3)
        self.conv_up = keras.layers.Conv2DTranspose(self.num_out_ch, 4, strides=2, padding="valid", name="conv7")

    def call(self, x):
        out, h, w = pad_for_unet(x, self.prepadding, 2, "replicate")
        for conv in self.convs:
            out = tf.nn.leaky_relu(conv(out), LRELU_SLOPE)
        out = crop_border(self.conv_up(out), 3)
        return to_output_dtype(out[:, : 2 * h, : 2 * w, :])

    def get_config(self):
        return {
            **super().get_config(),
            "num_in_ch": self.num_in_ch,
            "num_out_ch": self.num_out_ch,
            "num_feat": self.num_feat,
        }
