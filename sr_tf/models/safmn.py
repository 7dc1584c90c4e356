"""SAFMN and SAFMN-BCIE (Sun et al. 2023, "Spatially-Adaptive Feature Modulation for Efficient Image SR").

SAFMN: a 3x3 conv to `dim` channels, `n_blocks` attention blocks plus a long skip, a 3x3 conv to
`3 * scale**2` channels and a pixel shuffle. A block is `x + SAFM(LN(x))` then `x + CCM(LN(x))`
(channel LayerNorms, eps 1e-6). SAFM splits the channels into 4 chunks: chunk 0 goes through a 3x3
depthwise conv; chunk i > 0 is adaptively max-pooled to `(H // 2**i, W // 2**i)`, depthwise-convolved
and nearest-upsampled back; a 1x1 conv mixes the four, and `GELU(mix) * x` is the output. CCM is
`conv1x1(GELU(conv3x3(x)))` with `int(dim * ffn_scale)` hidden channels. The pooling follows
PyTorch's adaptive max pool exactly for any size (bins `[floor(j*n/o), ceil((j+1)*n/o))`).

SAFMN-BCIE (the authors' variant for bicubic-compressed image enhancement, an x1 model): a pixel
unshuffle by `upscaling_factor` first, `n_blocks` groups of `num_layers` blocks each closed by a 3x3
conv and a skip, then a 3x3 conv to `dim * s**2`, a pixel shuffle and a 3x3 conv to 3 channels. The
input is mirror-padded to a multiple of `upscaling_factor` inside the model and the output cropped back.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from sr_tf.models.channel_norms import channel_layer_norm
from sr_tf.models.layers import (
    PixelShuffle,
    elementwise_gelu,
    pad_to_multiple,
    to_output_dtype,
    validate_positive,
    validate_scale,
)

SCALES = (1, 2, 3, 4, 8)
N_LEVELS = 4
LAYER_NORM_EPS = 1e-6


def _conv(filters: int, kernel: int, name: str) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(filters, kernel, padding="same", name=name)


def adaptive_max_pool_1d(x: tf.Tensor, out: tf.Tensor, axis: int, max_width: int) -> tf.Tensor:
    """PyTorch's adaptive max pool along `axis` to `out` bins (each at most `max_width` wide)."""
    n = tf.shape(x)[axis]
    j = tf.range(out)
    start = j * n // out
    end = ((j + 1) * n + out - 1) // out
    result = tf.gather(x, start, axis=axis)
    for t in range(1, max_width):
        result = tf.maximum(result, tf.gather(x, tf.minimum(start + t, end - 1), axis=axis))
    return result


def nearest_resize_1d(x: tf.Tensor, size: tf.Tensor, axis: int) -> tf.Tensor:
    """PyTorch's `F.interpolate(mode="nearest")` along `axis` (source `floor(dst * float32(in / out))`)."""
    n = tf.shape(x)[axis]
    ratio = tf.cast(n, tf.float32) / tf.cast(size, tf.float32)
    src = tf.cast(tf.floor(tf.cast(tf.range(size), tf.float32) * ratio), tf.int32)
    return tf.gather(x, tf.minimum(src, n - 1), axis=axis)


@keras.saving.register_keras_serializable(package="sr_tf")
class SAFM(keras.layers.Layer):
    """Spatially-adaptive feature modulation: `[N, H, W, dim] -> [N, H, W, dim]` (dim a multiple of 4)."""

    def __init__(self, dim: int, **kwargs):
        super().__init__(**kwargs)
        if int(dim) % N_LEVELS:
            raise ValueError(f"SAFMN: `dim` must be a multiple of {N_LEVELS}. Received: dim={dim!r}")
        self.dim = int(dim)
        self.mfr = [keras.layers.DepthwiseConv2D(3, padding="same", name=f"mfr_{i}") for i in range(N_LEVELS)]
        self.aggr = _conv(self.dim, 1, "aggr")

    def call(self, x):
        h, w = tf.shape(x)[1], tf.shape(x)[2]
        chunks = tf.split(x, N_LEVELS, axis=-1)
        out = [self.mfr[0](chunks[0])]
        for i in range(1, N_LEVELS):
            f = 2**i
            s = adaptive_max_pool_1d(chunks[i], tf.maximum(h // f, 1), 1, 2 * f)
            s = adaptive_max_pool_1d(s, tf.maximum(w // f, 1), 2, 2 * f)
            s = self.mfr[i](s)
            out.append(nearest_resize_1d(nearest_resize_1d(s, h, 1), w, 2))
        return elementwise_gelu(self.aggr(tf.concat(out, axis=-1))) * x

    def get_config(self):
        return {**super().get_config(), "dim": self.dim}


@keras.saving.register_keras_serializable(package="sr_tf")
class AttBlock(keras.layers.Layer):
    """`x + SAFM(LN(x))`, then `x + CCM(LN(x))`: `[N, H, W, dim] -> [N, H, W, dim]`."""

    def __init__(self, dim: int, ffn_scale: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.ffn_scale = int(dim), float(ffn_scale)
        hidden = int(self.dim * self.ffn_scale)
        validate_positive("SAFMN", hidden_channels=hidden)
        self.norm1 = channel_layer_norm(LAYER_NORM_EPS, "norm1")
        self.norm2 = channel_layer_norm(LAYER_NORM_EPS, "norm2")
        self.safm = SAFM(self.dim, name="safm")
        self.ccm_0 = _conv(hidden, 3, "ccm_0")
        self.ccm_2 = _conv(self.dim, 1, "ccm_2")

    def call(self, x):
        x = self.safm(self.norm1(x)) + x
        return self.ccm_2(elementwise_gelu(self.ccm_0(self.norm2(x)))) + x

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "ffn_scale": self.ffn_scale}


@keras.saving.register_keras_serializable(package="sr_tf")
class SAFMN(keras.Model):
    """`[N, H, W, 3] float32 in [0, 1] -> [N, s*H, s*W, 3] float32 (about [0, 1])`, any H and W.

    Args:
      dim: feature width, a multiple of 4 (published: 36; 128 for the NTIRE "L" model).
      n_blocks: attention blocks (published: 8; 16 for "L").
      ffn_scale: CCM hidden width over `dim` (2.0).
      upscaling_factor: 1, 2, 3, 4 or 8.
    """

    def __init__(self, dim: int = 36, n_blocks: int = 8, ffn_scale: float = 2.0, upscaling_factor: int = 4, **kwargs):
        super().__init__(**kwargs)
        validate_positive("SAFMN", dim=dim, n_blocks=n_blocks)
        self.dim, self.n_blocks, self.ffn_scale = int(dim), int(n_blocks), float(ffn_scale)
        self.upscaling_factor = validate_scale("SAFMN", upscaling_factor, SCALES)
        self.to_feat = _conv(self.dim, 3, "to_feat")
        self.blocks = [AttBlock(self.dim, self.ffn_scale, name=f"feats_{i}") for i in range(self.n_blocks)]
        self.to_img = _conv(3 * self.upscaling_factor**2, 3, "to_img")
        self.shuffle = PixelShuffle(self.upscaling_factor, name="pixel_shuffle")

    @property
    def scale(self) -> int:
        return self.upscaling_factor

    def call(self, x):
        x = self.to_feat(x)
        out = x
        for block in self.blocks:
            out = block(out)
        return to_output_dtype(self.shuffle(self.to_img(out + x)))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "n_blocks": self.n_blocks, "ffn_scale": self.ffn_scale,
                "upscaling_factor": self.upscaling_factor}


@keras.saving.register_keras_serializable(package="sr_tf")
class SAFMNBCIE(keras.Model):
    """`[N, H, W, 3] float32 in [0, 1] -> [N, H, W, 3] float32 (about [0, 1])`, any H and W (an x1 model).

    Args:
      dim: feature width, a multiple of 4.
      n_blocks: groups of blocks (published: 6).
      num_layers: attention blocks per group (published: 6).
      ffn_scale: CCM hidden width over `dim` (2.0).
      upscaling_factor: the pixel (un)shuffle factor of the reduced-resolution body (published: 2).
    """

    def __init__(self, dim: int = 36, n_blocks: int = 6, num_layers: int = 6, ffn_scale: float = 2.0,
                 upscaling_factor: int = 2, **kwargs):
        super().__init__(**kwargs)
        validate_positive("SAFMNBCIE", dim=dim, n_blocks=n_blocks, num_layers=num_layers)
        self.dim, self.n_blocks, self.num_layers = int(dim), int(n_blocks), int(num_layers)
        self.ffn_scale = float(ffn_scale)
        self.upscaling_factor = validate_scale("SAFMNBCIE", upscaling_factor, SCALES)
        self.to_feat = _conv(self.dim, 3, "to_feat")
        self.groups = [[AttBlock(self.dim, self.ffn_scale, name=f"feats_{g}_layers_{i}") for i in range(self.num_layers)]
                       for g in range(self.n_blocks)]
        self.group_convs = [_conv(self.dim, 3, f"feats_{g}_conv") for g in range(self.n_blocks)]
        self.to_img_0 = _conv(self.dim * self.upscaling_factor**2, 3, "to_img_0")
        self.shuffle = PixelShuffle(self.upscaling_factor, name="pixel_shuffle")
        self.to_img_2 = _conv(3, 3, "to_img_2")

    @property
    def scale(self) -> int:
        return 1

    def call(self, x):
        s = self.upscaling_factor
        padded, h, w = pad_to_multiple(x, s)
        feat = self.to_feat(padded if s == 1 else tf.nn.space_to_depth(padded, s))
        out = feat
        for layers, conv in zip(self.groups, self.group_convs, strict=True):
            inner = out
            for block in layers:
                inner = block(inner)
            out = conv(inner) + out
        out = self.to_img_2(self.shuffle(self.to_img_0(out + feat)))
        return to_output_dtype(out[:, :h, :w, :])

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "n_blocks": self.n_blocks, "num_layers": self.num_layers,
                "ffn_scale": self.ffn_scale, "upscaling_factor": self.upscaling_factor}
