"""HAT (Chen et al. 2023, "Activating More Pixels in Image Super-Resolution Transformer"), as published.

SwinIR's design with two additions: each hybrid attention block (HAB) adds a channel-attention conv
branch (CAB: 3x3 conv to C/compress_ratio, GELU, 3x3 conv back, RCAN channel attention squeezing by
`squeeze_factor`), scaled by `conv_scale`, beside its (shifted) window attention; and each residual
group (RHAG) ends with an overlapping cross-attention block (OCAB), whose queries are the usual
windows and whose keys/values come from larger overlapping windows (`window_size * (1 +
overlap_ratio)`, zero padded at the border). Reconstruction is the classical pixel-shuffle one.

HAT-S / HAT / HAT-L differ only in widths and depths (`embed_dim` 144 / 180 / 180, 6 / 6 / 12
groups, `compress_ratio` 24 / 3 / 3, `squeeze_factor` 24 / 30 / 30). As in SwinIR, the input is
padded (mirrored) to window multiples and cropped back, so any H x W works; `(x - mean) * img_range`
before and its inverse after (mean: DIV2K's for RGB, else 0).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from sr_tf.models.layers import PixelShuffle, gelu, to_output_dtype, validate_positive
from sr_tf.models.swinir import DIV2K_RGB_MEAN, shuffle_stages
from sr_tf.models.window_attention import (
    Mlp,
    WindowAttention,
    attend,
    layer_norm,
    pad_to_window,
    shifted_window_mask,
    split_heads,
    window_partition,
    window_reverse,
)

SCALES = (1, 2, 3, 4, 8)
RESI_CONNECTIONS = ("1conv", "identity")


def _conv(filters: int, name: str, kernel: int = 3) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(filters, kernel, padding="same", name=name)


def overlap_window_size(window_size: int, overlap_ratio: float) -> int:
    """The side of OCAB's key/value windows, as the original computes it."""
    return int(window_size * overlap_ratio) + window_size


def overlap_relative_position_index(window_size: int, overlap_size: int) -> np.ndarray:
    """`[ws*ws, ow*ow]` int32: OCAB's relative position index (the original's `relative_position_index_OCA`).

    The original's offsets run from `2 - ow` (not 0), so some of its indices are negative, and torch's
    indexing wraps them around the table; the trained weights depend on that, so it is kept (mod the
    table's `(ws + ow - 1)**2` rows).
    """
    ws, ow = window_size, overlap_size

    def coords(n):
        return np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij")).reshape(2, -1)

    rel = coords(ow)[:, None, :] - coords(ws)[:, :, None] + (ws - ow + 1)  # [2, ws*ws, ow*ow], from 0
    return ((rel[0] * (ws + ow - 1) + rel[1]) % (ws + ow - 1) ** 2).astype(np.int32)


@keras.saving.register_keras_serializable(package="sr_tf")
class CAB(keras.layers.Layer):
    """Channel attention block: `[N, H, W, C] -> [N, H, W, C]`.

    `conv_0` (3x3, C -> C // compress_ratio), exact GELU, `conv_2` (3x3, back to C), then RCAN's
    channel attention: global mean, 1x1 `attention_1` (C -> C // squeeze_factor), ReLU, 1x1
    `attention_3` (back to C), sigmoid, times the features.
    """

    def __init__(self, dim: int, compress_ratio: float = 3, squeeze_factor: float = 30, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.compress_ratio, self.squeeze_factor = int(dim), compress_ratio, squeeze_factor
        self.hidden, self.squeezed = int(self.dim // compress_ratio), int(self.dim // squeeze_factor)
        validate_positive("CAB", hidden=self.hidden, squeezed=self.squeezed)
        self.conv_0 = _conv(self.hidden, "conv_0")
        self.conv_2 = _conv(self.dim, "conv_2")
        self.attention_1 = _conv(self.squeezed, "attention_1", kernel=1)
        self.attention_3 = _conv(self.dim, "attention_3", kernel=1)

    def build(self, input_shape):
        for conv, width in ((self.conv_0, self.dim), (self.conv_2, self.hidden), (self.attention_1, self.dim),
                            (self.attention_3, self.squeezed)):
            conv.build((None, None, None, width))
        self.built = True

    def call(self, x):
        y = self.conv_2(gelu(self.conv_0(x)))
        weights = tf.reduce_mean(y, axis=[1, 2], keepdims=True)
        weights = tf.sigmoid(self.attention_3(tf.nn.relu(self.attention_1(weights))))
        return y * weights

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "compress_ratio": self.compress_ratio,
                "squeeze_factor": self.squeeze_factor}


@keras.saving.register_keras_serializable(package="sr_tf")
class HAB(keras.layers.Layer):
    """Hybrid attention block: `x + attn(n) + conv_scale * cab(n)` with `n = norm1(x)`, then `+ mlp(norm2(.))`.

    `call(x, mask)`: x `[N, H, W, C]` (window multiples), mask from `shifted_window_mask`.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, shift_size: int = 0, compress_ratio: float = 3,
                 squeeze_factor: float = 30, conv_scale: float = 0.01, mlp_ratio: float = 2.0, qkv_bias: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        self.dim, self.num_heads, self.window_size, self.shift_size = int(dim), int(num_heads), int(window_size), int(shift_size)
        self.compress_ratio, self.squeeze_factor = compress_ratio, squeeze_factor
        self.conv_scale, self.mlp_ratio, self.qkv_bias = float(conv_scale), float(mlp_ratio), bool(qkv_bias)
        self.norm1 = layer_norm("norm1")
        self.attn = WindowAttention(self.dim, self.num_heads, self.window_size, self.shift_size, self.qkv_bias, name="attn")
        self.conv_block = CAB(self.dim, compress_ratio, squeeze_factor, name="conv_block")
        self.norm2 = layer_norm("norm2")
        self.mlp = Mlp(self.dim, int(self.dim * self.mlp_ratio), name="mlp")

    def build(self, input_shape):
        for layer in (self.norm1, self.attn, self.conv_block, self.norm2, self.mlp):
            layer.build((None, None, None, self.dim))
        self.built = True

    def call(self, x, mask=None):
        n = self.norm1(x)
        x = x + self.attn(n, mask) + self.conv_block(n) * tf.cast(self.conv_scale, x.dtype)
        return x + self.mlp(self.norm2(x))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads, "window_size": self.window_size,
                "shift_size": self.shift_size, "compress_ratio": self.compress_ratio,
                "squeeze_factor": self.squeeze_factor, "conv_scale": self.conv_scale, "mlp_ratio": self.mlp_ratio,
                "qkv_bias": self.qkv_bias}


@keras.saving.register_keras_serializable(package="sr_tf")
class OCAB(keras.layers.Layer):
    """Overlapping cross-attention block: `[N, H, W, C] -> [N, H, W, C]` (window multiples).

    Queries from `ws x ws` windows, keys and values from the `ow x ow` windows around them
    (`ow = overlap_window_size(ws, overlap_ratio)`, stride ws, zero padding `(ow - ws) // 2`, as
    torch's `nn.Unfold`); bias table `[(ws + ow - 1)**2, num_heads]`. Then `proj` + skip and
    `+ mlp(norm2(.))`.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, overlap_ratio: float = 0.5,
                 mlp_ratio: float = 2.0, qkv_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.num_heads, self.window_size = int(dim), int(num_heads), int(window_size)
        self.overlap_ratio, self.mlp_ratio, self.qkv_bias = float(overlap_ratio), float(mlp_ratio), bool(qkv_bias)
        self.overlap_size = overlap_window_size(self.window_size, self.overlap_ratio)
        if (self.overlap_size - self.window_size) % 2:
            raise ValueError(f"OCAB: window_size * overlap_ratio must round to an even number of pixels. Received: "
                             f"window_size={window_size}, overlap_ratio={overlap_ratio}")
        self.scale = (self.dim // self.num_heads) ** -0.5
        self.norm1 = layer_norm("norm1")
        self.qkv = keras.layers.Dense(3 * self.dim, use_bias=self.qkv_bias, name="qkv")
        self.proj = keras.layers.Dense(self.dim, name="proj")
        self.norm2 = layer_norm("norm2")
        self.mlp = Mlp(self.dim, int(self.dim * self.mlp_ratio), name="mlp")
        self._index = overlap_relative_position_index(self.window_size, self.overlap_size).reshape(-1)

    def build(self, input_shape):
        self.relative_position_bias_table = self.add_weight(
            shape=((self.window_size + self.overlap_size - 1) ** 2, self.num_heads),
            name="relative_position_bias_table", initializer=keras.initializers.TruncatedNormal(stddev=0.02))
        for layer in (self.norm1, self.qkv, self.proj, self.norm2, self.mlp):
            layer.build((None, None, None, self.dim))
        self.built = True

    def call(self, x):
        ws, ow, c = self.window_size, self.overlap_size, self.dim
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        qkv = self.qkv(self.norm1(x))
        q = split_heads(window_partition(qkv[..., :c], ws), self.num_heads)
        pad = (ow - ws) // 2
        kv = tf.pad(qkv[..., c:], [[0, 0], [pad, pad], [pad, pad], [0, 0]])
        kv = tf.image.extract_patches(kv, [1, ow, ow, 1], [1, ws, ws, 1], [1, 1, 1, 1], "VALID")
        kv = tf.reshape(kv, [-1, ow * ow, 2 * c])
        k, v = split_heads(kv[..., :c], self.num_heads), split_heads(kv[..., c:], self.num_heads)
        table = tf.cast(self.relative_position_bias_table, q.dtype)
        bias = tf.transpose(tf.reshape(tf.gather(table, self._index), [ws * ws, ow * ow, self.num_heads]), [2, 0, 1])
        out = window_reverse(attend(q * tf.cast(self.scale, q.dtype), k, v, bias), ws, height, width)
        x = self.proj(out) + x
        return x + self.mlp(self.norm2(x))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads, "window_size": self.window_size,
                "overlap_ratio": self.overlap_ratio, "mlp_ratio": self.mlp_ratio, "qkv_bias": self.qkv_bias}


@keras.saving.register_keras_serializable(package="sr_tf")
class RHAG(keras.layers.Layer):
    """Residual hybrid attention group: `x + conv(ocab(habs(x)))`; `call(x, mask)`, x `[N, H, W, C]`.

    `resi_connection` "1conv" (a 3x3 conv) or "identity" (none).
    """

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: int, compress_ratio: float = 3,
                 squeeze_factor: float = 30, conv_scale: float = 0.01, overlap_ratio: float = 0.5,
                 mlp_ratio: float = 2.0, qkv_bias: bool = True, resi_connection: str = "1conv", **kwargs):
        super().__init__(**kwargs)
        if resi_connection not in RESI_CONNECTIONS:
            raise ValueError(f"`resi_connection` must be one of {RESI_CONNECTIONS}. Received: "
                             f"resi_connection={resi_connection!r}")
        self.dim, self.depth, self.num_heads, self.window_size = int(dim), int(depth), int(num_heads), int(window_size)
        self.compress_ratio, self.squeeze_factor, self.conv_scale = compress_ratio, squeeze_factor, float(conv_scale)
        self.overlap_ratio, self.mlp_ratio, self.qkv_bias = float(overlap_ratio), float(mlp_ratio), bool(qkv_bias)
        self.resi_connection = resi_connection
        self.blocks = [
            HAB(self.dim, self.num_heads, self.window_size, 0 if i % 2 == 0 else self.window_size // 2,
                compress_ratio, squeeze_factor, self.conv_scale, self.mlp_ratio, self.qkv_bias, name=f"block_{i}")
            for i in range(self.depth)
        ]
        self.overlap_attn = OCAB(self.dim, self.num_heads, self.window_size, self.overlap_ratio, self.mlp_ratio,
                                 self.qkv_bias, name="overlap_attn")
        self.conv = _conv(self.dim, "conv") if resi_connection == "1conv" else None

    def build(self, input_shape):
        for layer in (*self.blocks, self.overlap_attn, *([self.conv] if self.conv else [])):
            layer.build((None, None, None, self.dim))
        self.built = True

    def call(self, x, mask=None):
        y = x
        for block in self.blocks:
            y = block(y, mask)
        y = self.overlap_attn(y)
        return (self.conv(y) if self.conv is not None else y) + x

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "depth": self.depth, "num_heads": self.num_heads,
                "window_size": self.window_size, "compress_ratio": self.compress_ratio,
                "squeeze_factor": self.squeeze_factor, "conv_scale": self.conv_scale,
                "overlap_ratio": self.overlap_ratio, "mlp_ratio": self.mlp_ratio, "qkv_bias": self.qkv_bias,
                "resi_connection": self.resi_connection}


@keras.saving.register_keras_serializable(package="sr_tf")
class HAT(keras.Model):
    """`[N, H, W, C] float32 in [0, 1] -> [N, s*H, s*W, C] float32 (about [0, 1])`, any H and W.

    Args:
      in_chans: image channels (3). Output channels are the same.
      embed_dim: transformer width (HAT-S 144, HAT / HAT-L 180).
      depths / num_heads: HABs and attention heads of each RHAG (6 x 6; HAT-L 12 x 6).
      window_size: attention window (16 as published).
      compress_ratio / squeeze_factor: the CAB's widths, `embed_dim // ratio` (HAT-S 24 / 24, else 3 / 30).
      conv_scale: weight of the CAB branch (0.01; not stored in checkpoints).
      overlap_ratio: OCAB's key/value windows are `int(window_size * overlap_ratio) + window_size` wide (0.5).
      mlp_ratio: MLP hidden width over `embed_dim` (2).
      qkv_bias: whether the qkv projections have biases (True).
      patch_norm: LayerNorm after the first conv (True).
      upscale: 1, 2, 3, 4 or 8.
      img_range: the network sees `(x - mean) * img_range` (1).
      resi_connection: "1conv" or "identity", the conv closing each RHAG and the body.
      num_feat: width of the reconstruction (64).
    """

    def __init__(
        self,
        in_chans: int = 3,
        embed_dim: int = 180,
        depths: tuple[int, ...] = (6, 6, 6, 6, 6, 6),
        num_heads: tuple[int, ...] = (6, 6, 6, 6, 6, 6),
        window_size: int = 16,
        compress_ratio: float = 3,
        squeeze_factor: float = 30,
        conv_scale: float = 0.01,
        overlap_ratio: float = 0.5,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = True,
        patch_norm: bool = True,
        upscale: int = 4,
        img_range: float = 1.0,
        resi_connection: str = "1conv",
        num_feat: int = 64,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_positive("HAT", in_chans=in_chans, embed_dim=embed_dim, window_size=window_size, num_feat=num_feat)
        if upscale not in SCALES:
            raise ValueError(f"HAT supports scales {SCALES}. Received: upscale={upscale!r}")
        if len(depths) != len(num_heads) or not depths:
            raise ValueError(f"HAT: `depths` and `num_heads` need one entry per RHAG. Received: depths={depths!r}, "
                             f"num_heads={num_heads!r}")
        if not float(img_range) > 0:
            raise ValueError(f"HAT: `img_range` must be positive. Received: img_range={img_range!r}")
        if resi_connection not in RESI_CONNECTIONS:
            raise ValueError(f"HAT: `resi_connection` must be one of {RESI_CONNECTIONS}. Received: "
                             f"resi_connection={resi_connection!r}")
        self.in_chans, self.embed_dim = int(in_chans), int(embed_dim)
        self.depths, self.num_heads = tuple(int(d) for d in depths), tuple(int(h) for h in num_heads)
        self.window_size, self.compress_ratio, self.squeeze_factor = int(window_size), compress_ratio, squeeze_factor
        self.conv_scale, self.overlap_ratio, self.mlp_ratio = float(conv_scale), float(overlap_ratio), float(mlp_ratio)
        self.qkv_bias, self.patch_norm = bool(qkv_bias), bool(patch_norm)
        self.upscale, self.img_range, self.resi_connection = int(upscale), float(img_range), resi_connection
        self.num_feat = int(num_feat)
        self.mean = DIV2K_RGB_MEAN if self.in_chans == 3 else (0.0,) * self.in_chans
        c, f = self.embed_dim, self.num_feat
        self.conv_first = _conv(c, "conv_first")
        self.patch_embed_norm = layer_norm("patch_embed_norm") if self.patch_norm else None
        self.rhags = [
            RHAG(c, d, h, self.window_size, compress_ratio, squeeze_factor, self.conv_scale, self.overlap_ratio,
                 self.mlp_ratio, self.qkv_bias, resi_connection, name=f"layers_{i}")
            for i, (d, h) in enumerate(zip(self.depths, self.num_heads, strict=True))
        ]
        self.norm = layer_norm("norm")
        self.conv_after_body = _conv(c, "conv_after_body") if resi_connection == "1conv" else None
        self.conv_before_upsample = _conv(f, "conv_before_upsample")
        stages = shuffle_stages(self.upscale) if self.upscale > 1 else ()
        self.up_convs = [_conv(f * r * r, f"upsample_{2 * i}") for i, r in enumerate(stages)]
        self.shuffles = [PixelShuffle(r, name=f"shuffle_{i}") for i, r in enumerate(stages)]
        self.conv_last = _conv(self.in_chans, "conv_last")

    @property
    def scale(self) -> int:
        return self.upscale

    def forward_features(self, x):
        """`[N, H, W, embed_dim]` (window multiples) -> the same, through the RHAGs."""
        mask = None
        if any(d > 1 for d in self.depths):
            ws = self.window_size
            mask = shifted_window_mask(tf.shape(x)[1], tf.shape(x)[2], ws, ws // 2)
        if self.patch_embed_norm is not None:
            x = self.patch_embed_norm(x)
        for layer in self.rhags:
            x = layer(x, mask)
        return self.norm(x)

    def call(self, x):
        mean = tf.constant(self.mean, x.dtype)
        x = (x - mean) * tf.cast(self.img_range, x.dtype)
        x, height, width = pad_to_window(x, self.window_size)
        first = self.conv_first(x)
        body = self.forward_features(first)
        body = (self.conv_after_body(body) if self.conv_after_body is not None else body) + first
        y = tf.nn.leaky_relu(self.conv_before_upsample(body), 0.01)
        for conv, shuffle in zip(self.up_convs, self.shuffles, strict=True):
            y = shuffle(conv(y))
        y = self.conv_last(y) / tf.cast(self.img_range, x.dtype) + mean
        return to_output_dtype(y[:, : height * self.upscale, : width * self.upscale])

    def get_config(self):
        return {
            **super().get_config(),
            "in_chans": self.in_chans,
            "embed_dim": self.embed_dim,
            "depths": list(self.depths),
            "num_heads": list(self.num_heads),
            "window_size": self.window_size,
            "compress_ratio": self.compress_ratio,
            "squeeze_factor": self.squeeze_factor,
            "conv_scale": self.conv_scale,
            "overlap_ratio": self.overlap_ratio,
            "mlp_ratio": self.mlp_ratio,
            "qkv_bias": self.qkv_bias,
            "patch_norm": self.patch_norm,
            "upscale": self.upscale,
            "img_range": self.img_range,
            "resi_connection": self.resi_connection,
            "num_feat": self.num_feat,
        }
