"""UpCunet (Real-CUGAN, bilibili AI Lab 2022): waifu2x's cascaded U-Nets, for x2, x3 and x4 anime.

The same two U-Nets as `CUNet` (`sr_tf.models.cunet`), with the input padded by mirroring
instead of repeating the edge, and per-scale variants:

* x2: UNet1 ends in a x2 transposed conv to RGB; output = UNet2(y) + y cropped by 20.
* x3: UNet1 ends in a x3 transposed conv (kernel 5, stride 3) to RGB; otherwise as x2.
* x4: UNet1 ends in a x2 transposed conv to 64 channels; UNet2 keeps 64 channels; their sum
  goes through a 3x3 conv to 12 channels, a 1-pixel crop and a x2 pixel shuffle, and the
  nearest-upsampled input is added.

As realcugan-ncnn-vulkan runs it (CPU path, one tile), the input is mirrored by 18 / 14 / 19
pixels (x2 / x3 / x4) on every side, plus enough at the bottom/right for H and W to be even
(x2, x4) or multiples of 4 (x3), and the output is cropped to `sH x sW` from the top-left.
`UpCunet` does both, so it maps any `[N, H, W, 3]` to `[N, sH, sW, 3]`.

"pro" checkpoints (Real-CUGAN's `pro-*.pth`) were trained on inputs mapped to [0.15, 0.85]:
with `pro=True` the model maps its input by `0.7 x + 0.15` and its output back by
`(y - 0.15) / 0.7`, as Real-CUGAN's PyTorch code (and spandrel) do around the same network.

"se" models (`models-se`, `models-pro`) have squeeze-and-excitation blocks in the U-Nets;
`models-nose` has none. The SE blocks average over the whole input: run on tiles, each tile
gets its own averages (the ncnn program's `syncgap` modes share them across tiles instead).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from sr_tf.models.cunet import UNET2_SKIP_CROP, UNet1, UNet2, pad_for_unet
from sr_tf.models.layers import (
    PixelShuffle,
    crop_border,
    to_output_dtype,
    validate_positive,
    validate_scale,
)

PREPADDING = {2: 18, 3: 14, 4: 19}  # the ncnn program's, the least that still gives sH x sW pixels
SIZE_MULTIPLE = {2: 2, 3: 4, 4: 2}
PRO_GAIN, PRO_OFFSET = 0.7, 0.15  # "pro" models see 0.7 x + 0.15


@keras.saving.register_keras_serializable(package="sr_tf")
class UpCunet(keras.Model):
    """`[N, H, W, C] float32 in [0, 1] -> [N, s*H, s*W, C] float32 (about [0, 1])`, any H and W.

    Args:
      scale: 2, 3 or 4.
      se: squeeze-and-excitation blocks in the U-Nets (published "se" and "pro" models: True;
        "nose": False).
      num_in_ch / num_out_ch: image channels (3).
      num_feat: width of the first convs; the U-Nets use 1x, 2x, 4x and 8x of it (published: 32).
      pro: map the input to [0.15, 0.85] and the output back (the PyTorch "pro" checkpoints).
    """

    def __init__(
        self,
        scale: int = 2,
        se: bool = True,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 32,
        pro: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_positive("UpCunet", num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat)
        self.scale = validate_scale("UpCunet", scale)
        self.se, self.pro = bool(se), bool(pro)
        self.num_in_ch, self.num_out_ch, self.num_feat = int(num_in_ch), int(num_out_ch), int(num_feat)
        if self.scale == 4 and self.num_in_ch != self.num_out_ch:
            raise ValueError(
                "UpCunet x4 adds the upsampled input to its output, so num_in_ch must equal num_out_ch. "
                f"Received: num_in_ch={num_in_ch!r}, num_out_ch={num_out_ch!r}"
            )
        if self.scale == 4:
            hidden = 2 * self.num_feat
            self.unet1 = UNet1(hidden, self.num_feat, se=self.se, factor=2, name="unet1")
            self.unet2 = UNet2(hidden, self.num_feat, se=self.se, name="unet2")
            self.conv_final = keras.layers.Conv2D(self.num_out_ch * 4, 3, padding="valid", name="conv_final")
            self.shuffle = PixelShuffle(2, name="pixel_shuffle")
        else:
            self.unet1 = UNet1(self.num_out_ch, self.num_feat, se=self.se, factor=self.scale, name="unet1")
            self.unet2 = UNet2(self.num_out_ch, self.num_feat, se=self.se, name="unet2")

    def call(self, x):
        s = self.scale
        if self.pro:
            x = x * PRO_GAIN + PRO_OFFSET
        padded, h, w = pad_for_unet(x, PREPADDING[s], SIZE_MULTIPLE[s], "reflect")
        x1 = self.unet1(padded)
        out = self.unet2(x1) + crop_border(x1, UNET2_SKIP_CROP)
        if s == 4:
            out = self.shuffle(crop_border(self.conv_final(out), 1))
        out = out[:, : s * h, : s * w, :]
        if s == 4:
            out = out + tf.repeat(tf.repeat(x, 4, axis=1), 4, axis=2)
        if self.pro:
            out = (out - PRO_OFFSET) / PRO_GAIN
        return to_output_dtype(out)

    def get_config(self):
        return {
            **super().get_config(),
            "scale": self.scale,
            "se": self.se,
            "num_in_ch": self.num_in_ch,
            "num_out_ch": self.num_out_ch,
            "num_feat": self.num_feat,
            "pro": self.pro,
        }
