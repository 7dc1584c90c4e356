"""SRVGGNetCompact (Real-ESRGAN's compact model, used by realesr-animevideov3 and realesr-general)."""

from __future__ import annotations

import keras

from sr_tf.models.layers import (
    PixelShuffle,
    PReLU,
    conv_prelu_chain,
    to_output_dtype,
    validate_positive,
    validate_scale,
)

ACTIVATIONS = ("prelu", "relu", "leakyrelu")
SCALES = (1, 2, 3, 4, 8)  # x1 (restoration) and x8 exist as community checkpoints


def _activation(kind: str, name: str) -> keras.layers.Layer:
    if kind == "prelu":
        return PReLU(name=name)
    if kind == "relu":
        return keras.layers.ReLU(name=name)
    return keras.layers.LeakyReLU(negative_slope=0.1, name=name)


@keras.saving.register_keras_serializable(package="sr_tf")
class SRVGGNetCompact(keras.Model):
    """A plain stack of 3x3 convs + activations, pixel shuffle, plus the nearest-upsampled input.

    `[N, H, W, C] float32 in [0, 1] -> [N, s*H, s*W, C] float32 (about [0, 1])`, any H and W.

    Args:
      num_in_ch / num_out_ch: image channels (3).
      num_feat: body channels (published: 64).
      num_conv: 3x3 convs in the body after the first (published: 16 for animevideov3, 32 for general).
      upscale: 1, 2, 3, 4 or 8 (published: 2, 3, 4).
      act_type: "prelu" (published), "relu" or "leakyrelu" (slope 0.1).
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_conv: int = 16,
        upscale: int = 4,
        act_type: str = "prelu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_positive("SRVGGNetCompact", num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat)
        if not isinstance(num_conv, int) or num_conv < 0:
            raise ValueError(f"SRVGGNetCompact: `num_conv` must be >= 0. Received: num_conv={num_conv!r}")
        if act_type not in ACTIVATIONS:
            raise ValueError(f"SRVGGNetCompact: `act_type` must be one of {ACTIVATIONS}. Received: act_type={act_type!r}")
        self.num_in_ch, self.num_out_ch = int(num_in_ch), int(num_out_ch)
        self.num_feat, self.num_conv = int(num_feat), int(num_conv)
        self.upscale = validate_scale("SRVGGNetCompact", upscale, SCALES)
        self.act_type = act_type
        self.convs = [keras.layers.Conv2D(self.num_feat, 3, padding="same", name="conv_0")]
        self.acts = [_activation(act_type, "act_0")]
        for i in range(1, self.num_conv + 1):
            self.convs.append(keras.layers.Conv2D(self.num_feat, 3, padding="same", name=f"conv_{i}"))
            self.acts.append(_activation(act_type, f"act_{i}"))
        self.conv_last = keras.layers.Conv2D(self.num_out_ch * self.upscale**2, 3, padding="same", name="conv_last")
        self.shuffle = PixelShuffle(self.upscale, name="pixel_shuffle")
        self.base_upsample = keras.layers.UpSampling2D(self.upscale, interpolation="nearest", name="base_upsample")

    @property
    def scale(self) -> int:
        return self.upscale

    def call(self, x):
        out = self.shuffle(conv_prelu_chain(x, [*self.convs, self.conv_last], self.acts))
        return to_output_dtype(out + self.base_upsample(x))

    def get_config(self):
        return {
            **super().get_config(),
            "num_in_ch": self.num_in_ch,
            "num_out_ch": self.num_out_ch,
            "num_feat": self.num_feat,
            "num_conv": self.num_conv,
            "upscale": self.upscale,
            "act_type": self.act_type,
        }
