"""SwinIR (Liang et al. 2021, "SwinIR: Image Restoration Using Swin Transformer"), as published.

A 3x3 conv, then residual Swin transformer blocks (RSTB: `depths[i]` Swin blocks alternating plain
and shifted windows, a conv, a skip), a LayerNorm, a conv and a long skip, then one of four
reconstructions (`upsampler`):

* "pixelshuffle" (classical SR): conv + LeakyReLU(0.01), a pixel-shuffle stage per factor 2
  (or one x3), conv to the image;
* "pixelshuffledirect" (lightweight SR): one conv to `scale**2 * C` and one pixel shuffle;
* "nearest+conv" (real-world SR): conv + LeakyReLU(0.01), nearest x2 + conv + LeakyReLU(0.2) per
  factor 2, conv + LeakyReLU(0.2), conv to the image;
* "" (x1 denoising / JPEG): conv to the image, added to the (normalised) input.

The input is padded (mirrored) to multiples of `window_size` and the output cropped back, so any
H x W works; `(x - mean) * img_range` before and its inverse after (mean: DIV2K's for RGB, else 0).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from sr_tf.models.layers import PixelShuffle, to_output_dtype, validate_positive
from sr_tf.models.window_attention import (
    SwinTransformerBlock,
    layer_norm,
    pad_to_window,
    shifted_window_mask,
)

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)
UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect", "nearest+conv", "")
SCALES = {"pixelshuffle": (2, 3, 4, 8), "pixelshuffledirect": (1, 2, 3, 4, 8), "nearest+conv": (2, 4, 8), "": (1,)}
RESI_CONNECTIONS = ("1conv", "3conv")


def _conv(filters: int, name: str, kernel: int = 3) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(filters, kernel, padding="same", name=name)


def shuffle_stages(scale: int) -> tuple[int, ...]:
    """The pixel-shuffle factors of the classical upsampler: 2 per factor of 2, or one 3."""
    return (3,) if scale == 3 else (2,) * (scale.bit_length() - 1)


@keras.saving.register_keras_serializable(package="sr_tf")
class ResidualConv(keras.layers.Layer):
    """The conv before a residual: "1conv" (one 3x3) or "3conv" (3x3 to C/4, LReLU 0.2, 1x1, LReLU 0.2, 3x3 to C).

    `[N, H, W, C] -> [N, H, W, C]`; the convs are `convs` (torch: `conv` or `conv.0/.2/.4`).
    """

    def __init__(self, dim: int, resi_connection: str = "1conv", **kwargs):
        super().__init__(**kwargs)
        if resi_connection not in RESI_CONNECTIONS:
            raise ValueError(f"`resi_connection` must be one of {RESI_CONNECTIONS}. Received: "
                             f"resi_connection={resi_connection!r}")
        self.dim, self.resi_connection = int(dim), resi_connection
        if resi_connection == "1conv":
            self.convs = [_conv(self.dim, "conv")]
        else:
            q = self.dim // 4
            self.convs = [_conv(q, "conv_0"), _conv(q, "conv_2", kernel=1), _conv(self.dim, "conv_4")]

    def build(self, input_shape):
        width = self.dim
        for conv in self.convs:
            conv.build((None, None, None, width))
            width = conv.filters
        self.built = True

    def call(self, x):
        for i, conv in enumerate(self.convs):
            x = conv(x) if i == 0 else conv(tf.nn.leaky_relu(x, 0.2))
        return x

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "resi_connection": self.resi_connection}


@keras.saving.register_keras_serializable(package="sr_tf")
class RSTB(keras.layers.Layer):
    """Residual Swin transformer block: `x + conv(blocks(x))`; `call(x, mask)`, x `[N, H, W, C]` (window multiples)."""

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: int, mlp_ratio: float = 2.0,
                 resi_connection: str = "1conv", **kwargs):
        super().__init__(**kwargs)
        self.dim, self.depth, self.num_heads, self.window_size = int(dim), int(depth), int(num_heads), int(window_size)
        self.mlp_ratio, self.resi_connection = float(mlp_ratio), resi_connection
        self.blocks = [
            SwinTransformerBlock(self.dim, self.num_heads, self.window_size, 0 if i % 2 == 0 else self.window_size // 2,
                                 self.mlp_ratio, name=f"block_{i}")
            for i in range(self.depth)
        ]
        self.conv = ResidualConv(self.dim, resi_connection, name="conv")

    def build(self, input_shape):
        for layer in (*self.blocks, self.conv):
            layer.build((None, None, None, self.dim))
        self.built = True

    def call(self, x, mask=None):
        y = x
        for block in self.blocks:
            y = block(y, mask)
        return self.conv(y) + x

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "depth": self.depth, "num_heads": self.num_heads,
                "window_size": self.window_size, "mlp_ratio": self.mlp_ratio, "resi_connection": self.resi_connection}


@keras.saving.register_keras_serializable(package="sr_tf")
class SwinIR(keras.Model):
    """`[N, H, W, C] float32 in [0, 1] -> [N, s*H, s*W, C] float32 (about [0, 1])`, any H and W.

    Args:
      in_chans: image channels (3; 1 for the grayscale denoisers). Output channels are the same.
      embed_dim: transformer width (classical: 180; lightweight: 60).
      depths / num_heads: Swin blocks and attention heads of each RSTB (classical: 6 x 6 / 6 x 6).
      window_size: attention window (8; 7 for the JPEG models).
      mlp_ratio: MLP hidden width over `embed_dim` (2).
      upscale: the scale (see `SCALES[upsampler]`).
      img_range: the network sees `(x - mean) * img_range` (1; 255 for the JPEG models).
      upsampler: "pixelshuffle", "pixelshuffledirect", "nearest+conv" or "" (x1, restoration).
      resi_connection: "1conv" or "3conv", the conv closing each RSTB and the body.
      num_feat: width of the "pixelshuffle" / "nearest+conv" reconstruction (64).
    """

    def __init__(
        self,
        in_chans: int = 3,
        embed_dim: int = 180,
        depths: tuple[int, ...] = (6, 6, 6, 6, 6, 6),
        num_heads: tuple[int, ...] = (6, 6, 6, 6, 6, 6),
        window_size: int = 8,
        mlp_ratio: float = 2.0,
        upscale: int = 2,
        img_range: float = 1.0,
        upsampler: str = "pixelshuffle",
        resi_connection: str = "1conv",
        num_feat: int = 64,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_positive("SwinIR", in_chans=in_chans, embed_dim=embed_dim, window_size=window_size, num_feat=num_feat)
        if upsampler not in UPSAMPLERS:
            raise ValueError(f"SwinIR: `upsampler` must be one of {UPSAMPLERS}. Received: upsampler={upsampler!r}")
        if upscale not in SCALES[upsampler]:
            raise ValueError(f"SwinIR: upsampler {upsampler!r} supports scales {SCALES[upsampler]}. "
                             f"Received: upscale={upscale!r}")
        if len(depths) != len(num_heads) or not depths:
            raise ValueError(f"SwinIR: `depths` and `num_heads` need one entry per RSTB. Received: depths={depths!r}, "
                             f"num_heads={num_heads!r}")
        if not float(img_range) > 0:
            raise ValueError(f"SwinIR: `img_range` must be positive. Received: img_range={img_range!r}")
        self.in_chans, self.embed_dim = int(in_chans), int(embed_dim)
        self.depths, self.num_heads = tuple(int(d) for d in depths), tuple(int(h) for h in num_heads)
        self.window_size, self.mlp_ratio = int(window_size), float(mlp_ratio)
        self.upscale, self.img_range, self.upsampler = int(upscale), float(img_range), upsampler
        self.resi_connection, self.num_feat = resi_connection, int(num_feat)
        self.mean = DIV2K_RGB_MEAN if self.in_chans == 3 else (0.0,) * self.in_chans
        c, f = self.embed_dim, self.num_feat
        self.conv_first = _conv(c, "conv_first")
        self.patch_norm = layer_norm("patch_embed_norm")
        self.rstbs = [RSTB(c, d, h, self.window_size, self.mlp_ratio, resi_connection, name=f"layers_{i}")
                      for i, (d, h) in enumerate(zip(self.depths, self.num_heads, strict=True))]
        self.norm = layer_norm("norm")
        self.conv_after_body = ResidualConv(c, resi_connection, name="conv_after_body")
        self.up_convs = []
        if upsampler == "pixelshuffle":
            self.conv_before_upsample = _conv(f, "conv_before_upsample")
            self.up_convs = [_conv(f * r * r, f"upsample_{2 * i}") for i, r in enumerate(shuffle_stages(self.upscale))]
            self.shuffles = [PixelShuffle(r, name=f"shuffle_{i}") for i, r in enumerate(shuffle_stages(self.upscale))]
        elif upsampler == "pixelshuffledirect":
            self.up_convs = [_conv(self.in_chans * self.upscale**2, "upsample_0")]
            self.shuffles = [PixelShuffle(self.upscale, name="shuffle_0")]
        elif upsampler == "nearest+conv":
            self.conv_before_upsample = _conv(f, "conv_before_upsample")
            self.up_convs = [_conv(f, f"conv_up{i + 1}") for i in range(self.upscale.bit_length() - 1)]
            self.conv_hr = _conv(f, "conv_hr")
        if upsampler != "pixelshuffledirect":
            self.conv_last = _conv(self.in_chans, "conv_last")

    @property
    def scale(self) -> int:
        return self.upscale

    def forward_features(self, x):
        """`[N, H, W, embed_dim]` (window multiples) -> the same, through the RSTBs."""
        mask = None
        if any(d > 1 for d in self.depths):  # the odd blocks shift; mask for this (padded) size
            ws = self.window_size
            mask = shifted_window_mask(tf.shape(x)[1], tf.shape(x)[2], ws, ws // 2)
        x = self.patch_norm(x)
        for layer in self.rstbs:
            x = layer(x, mask)
        return self.norm(x)

    def call(self, x):
        x, height, width = pad_to_window(x, self.window_size)
        mean = tf.constant(self.mean, x.dtype)
        x = (x - mean) * tf.cast(self.img_range, x.dtype)
        first = self.conv_first(x)
        body = self.conv_after_body(self.forward_features(first)) + first
        if self.upsampler == "pixelshuffle":
            y = tf.nn.leaky_relu(self.conv_before_upsample(body), 0.01)
            for conv, shuffle in zip(self.up_convs, self.shuffles, strict=True):
                y = shuffle(conv(y))
            y = self.conv_last(y)
        elif self.upsampler == "pixelshuffledirect":
            y = self.shuffles[0](self.up_convs[0](body))
        elif self.upsampler == "nearest+conv":
            y = tf.nn.leaky_relu(self.conv_before_upsample(body), 0.01)
            for conv in self.up_convs:
                y = tf.nn.leaky_relu(conv(tf.repeat(tf.repeat(y, 2, axis=1), 2, axis=2)), 0.2)
            y = self.conv_last(tf.nn.leaky_relu(self.conv_hr(y), 0.2))
        else:
            y = x + self.conv_last(body)
        y = y / tf.cast(self.img_range, y.dtype) + mean
        return to_output_dtype(y[:, : height * self.upscale, : width * self.upscale])

    def get_config(self):
        return {
            **super().get_config(),
            "in_chans": self.in_chans,
            "embed_dim": self.embed_dim,
            "depths": list(self.depths),
            "num_heads": list(self.num_heads),
            "window_size": self.window_size,
            "mlp_ratio": self.mlp_ratio,
            "upscale": self.upscale,
            "img_range": self.img_range,
            "upsampler": self.upsampler,
            "resi_connection": self.resi_connection,
            "num_feat": self.num_feat,
        }
