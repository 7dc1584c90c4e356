"""DAT (Chen et al., ICCV 2023, "Dual Aggregation Transformer for Image Super-Resolution").

Residual groups of blocks that alternate two attentions, each followed by an SGFN feed-forward:

* even blocks: spatial self-attention in rectangle windows (half the channels in `split_size`
  windows, half in the transposed ones), with a dynamic position bias (a small MLP over the
  relative offsets), and in some blocks shifted windows with a Swin-style mask;
* odd blocks: channel self-attention (XCiT-style, over the whole image, with a learned
  temperature per head).

Both add a depth-wise conv branch on V and gate the two branches with each other (the "adaptive
interaction" maps, a channel map from a pooled branch and a spatial map). The SGFN gates half of
its hidden channels by a depth-wise conv of the other half.

Any H x W works: the spatial attention pads its Q, K, V (zeros, after the projection) at the
bottom/right to a multiple of the larger window side and crops its output back, as the authors'
code does, so a size that is no window multiple gives the same numbers as their PyTorch model.
The input is normalised inside (`(x - rgb_mean) * img_range`) and denormalised at the end.

Published variants (`VARIANTS`): DAT, DAT-S, DAT-2 (classical SR, "pixelshuffle") and
DAT-light (one 18-block group, "pixelshuffledirect", "3conv").
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from sr_tf.models.channel_norms import LayerNorm
from sr_tf.models.layers import LazyBuild as _LazyBuild
from sr_tf.models.layers import (
    PixelShuffle,
    dense,
    elementwise_gelu,
    gelu,
    to_output_dtype,
    validate_positive,
    validate_scale,
)

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)
UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect")
RESI_CONNECTIONS = ("1conv", "3conv")
SCALES = {"pixelshuffle": (2, 3, 4, 8), "pixelshuffledirect": (1, 2, 3, 4, 8)}
MASK_VALUE = -100.0  # the authors' shifted-window mask value (not -inf)
LN_EPS = 1e-5  # torch.nn.LayerNorm's and BatchNorm2d's

_DAT_BASE = dict(embed_dim=180, depth=(6,) * 6, num_heads=(6,) * 6, upsampler="pixelshuffle", resi_connection="1conv")
VARIANTS = {
    "DAT": {**_DAT_BASE, "split_size": (8, 32), "expansion_factor": 4.0},
    "DAT-S": {**_DAT_BASE, "split_size": (8, 16), "expansion_factor": 2.0},
    "DAT-2": {**_DAT_BASE, "split_size": (8, 32), "expansion_factor": 2.0},
    "DAT-light": dict(embed_dim=60, depth=(18,), num_heads=(6,), split_size=(8, 32), expansion_factor=2.0,
                      upsampler="pixelshuffledirect", resi_connection="3conv"),
}


def _norm(name: str) -> LayerNorm:
    return LayerNorm(axis=-1, epsilon=LN_EPS, name=name)


def _batch_norm(name: str) -> keras.layers.BatchNormalization:
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=LN_EPS, name=name)


def _conv(filters: int, name: str, kernel: int = 3) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(filters, kernel, padding="same", name=name)


def _depthwise(name: str) -> keras.layers.DepthwiseConv2D:
    # not Conv2D(groups=C): Keras runs grouped convs through XLA on the CPU, compiling per shape
    return keras.layers.DepthwiseConv2D(3, padding="same", name=name)


def is_shifted(group: int, block: int) -> bool:
    """Whether block `block` of residual group `group` attends in shifted windows (the authors' rule)."""
    return (group % 2 == 0 and block > 0 and (block - 2) % 4 == 0) or (group % 2 == 1 and block % 4 == 0)


def position_tables(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """`(offsets [(2h-1)(2w-1), 2] float32, index [h*w*h*w] int32)` of an `height x width` window.

    `offsets` lists every relative (dy, dx); `index[i * N + j]` is the row of the offset from token
    `j` to token `i` (row-major tokens, N = h*w).
    """
    dy, dx = np.meshgrid(np.arange(1 - height, height), np.arange(1 - width, width), indexing="ij")
    offsets = np.stack([dy.ravel(), dx.ravel()], axis=1).astype(np.float32)
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    ys, xs = ys.ravel(), xs.ravel()
    rel_y = ys[:, None] - ys[None, :] + height - 1
    rel_x = xs[:, None] - xs[None, :] + width - 1
    return offsets, (rel_y * (2 * width - 1) + rel_x).reshape(-1).astype(np.int32)


def _to_windows(x, height: int, width: int, heads: int):
    """`[B, H, W, c] -> [B * nW, heads, height * width, c // heads]` (H, W multiples of the window)."""
    b, h, w, c = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2], x.shape[-1]
    x = tf.reshape(x, [b, h // height, height, w // width, width, c])
    x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
    x = tf.reshape(x, [-1, height * width, heads, c // heads])
    return tf.transpose(x, [0, 2, 1, 3])


def _from_windows(x, height: int, width: int, b, h, w):
    """Inverse of `_to_windows`: `[B * nW, heads, N, d] -> [B, h, w, heads * d]`."""
    c = x.shape[1] * x.shape[3]
    x = tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b, h // height, w // width, height, width, c])
    return tf.reshape(tf.transpose(x, [0, 1, 3, 2, 4, 5]), [b, h, w, c])


def shift_mask(h, w, height: int, width: int):
    """`[nW, N, N]` float32: 0 where two tokens of a shifted window come from the same image region,
    `MASK_VALUE` elsewhere (regions as in Swin: the last `window` and last `shift` rows/columns)."""

    def regions(size, window):
        r = tf.range(size)
        return tf.cast(r >= size - window, tf.int32) + tf.cast(r >= size - window // 2, tf.int32)

    ids = regions(h, height)[:, None] * 3 + regions(w, width)[None, :]
    ids = tf.reshape(tf.transpose(tf.reshape(ids, [h // height, height, w // width, width]), [0, 2, 1, 3]),
                     [-1, height * width])
    return tf.where(ids[:, :, None] != ids[:, None, :], MASK_VALUE, 0.0)


@keras.saving.register_keras_serializable(package="sr_tf")
class DynamicPosBias(_LazyBuild):
    """The position-bias MLP: `[T, 2]` relative offsets -> `[T, num_heads]` (no residuals, as DAT uses it)."""

    def __init__(self, pos_dim: int, num_heads: int, **kwargs):
        super().__init__(**kwargs)
        self.pos_dim, self.num_heads = int(pos_dim), int(num_heads)
        self.pos_proj = keras.layers.Dense(self.pos_dim, name="pos_proj")
        self.norms = [_norm(f"pos{i}_norm") for i in (1, 2, 3)]
        self.linears = [keras.layers.Dense(self.pos_dim, name="pos1_linear"),
                        keras.layers.Dense(self.pos_dim, name="pos2_linear"),
                        keras.layers.Dense(self.num_heads, name="pos3_linear")]

    def call(self, offsets):
        pos = self.pos_proj(offsets)
        for norm, linear in zip(self.norms, self.linears, strict=True):
            pos = linear(tf.nn.relu(norm(pos)))
        return pos

    def get_config(self):
        return {**super().get_config(), "pos_dim": self.pos_dim, "num_heads": self.num_heads}


@keras.saving.register_keras_serializable(package="sr_tf")
class WindowBranch(_LazyBuild):
    """Self-attention in `height x width` windows over `channels` channels (one half of a spatial block).

    `call(q, k, v)`: each `[B, H, W, channels]`, H a multiple of `height` and W of `width`;
    returns `[B, H, W, channels]`. With `shifted`, windows are shifted by half their size and
    tokens from different regions masked.
    """

    def __init__(self, channels: int, num_heads: int, height: int, width: int, shifted: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.num_heads = int(channels), int(num_heads)
        self.height, self.width, self.shifted = int(height), int(width), bool(shifted)
        self.scale = float((self.channels // self.num_heads) ** -0.5)
        self.offsets, self.index = position_tables(self.height, self.width)
        self.pos = DynamicPosBias(self.channels // 4 // 4, self.num_heads, name="pos")

    def _attend(self, q, k, v):
        b, h, w = tf.shape(q)[0], tf.shape(q)[1], tf.shape(q)[2]
        q, k, v = (_to_windows(t, self.height, self.width, self.num_heads) for t in (q, k, v))
        attn = tf.matmul(q * tf.cast(self.scale, q.dtype), k, transpose_b=True)  # [B*nW, heads, N, N]
        n = self.height * self.width
        table = self.pos(tf.constant(self.offsets, q.dtype))  # [T, heads]
        bias = tf.transpose(tf.reshape(tf.gather(table, self.index), [n, n, self.num_heads]), [2, 0, 1])
        attn = attn + tf.cast(bias, attn.dtype)[None]
        if self.shifted:
            mask = tf.cast(shift_mask(h, w, self.height, self.width), attn.dtype)
            windows = tf.shape(mask)[0]
            attn = tf.reshape(attn, [-1, windows, self.num_heads, n, n]) + mask[None, :, None]
            attn = tf.reshape(attn, [-1, self.num_heads, n, n])
        return _from_windows(tf.matmul(tf.nn.softmax(attn, axis=-1), v), self.height, self.width, b, h, w)

    def call(self, q, k, v):
        if not self.shifted:
            return self._attend(q, k, v)
        shift = (self.height // 2, self.width // 2)
        q, k, v = (tf.roll(t, [-shift[0], -shift[1]], axis=[1, 2]) for t in (q, k, v))
        return tf.roll(self._attend(q, k, v), list(shift), axis=[1, 2])

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "num_heads": self.num_heads,
                "height": self.height, "width": self.width, "shifted": self.shifted}


class _DualAggregation(_LazyBuild):
    """What both attentions share: the QKV and output projections, the depth-wise conv branch on V
    and the two interaction maps (a channel map from a pooled branch, a spatial map)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.num_heads, self.qkv_bias = int(dim), int(num_heads), bool(qkv_bias)
        d = self.dim
        self.qkv = keras.layers.Dense(3 * d, use_bias=self.qkv_bias, name="qkv")
        self.proj = keras.layers.Dense(d, name="proj")
        self.dwconv = _depthwise("dwconv")
        self.dwconv_bn = _batch_norm("dwconv_bn")
        self.channel_1, self.channel_bn, self.channel_2 = (
            _conv(d // 8, "channel_1", 1), _batch_norm("channel_bn"), _conv(d, "channel_2", 1))
        self.spatial_1, self.spatial_bn, self.spatial_2 = (
            _conv(d // 16, "spatial_1", 1), _batch_norm("spatial_bn"), _conv(1, "spatial_2", 1))

    def conv_branch(self, v):
        return elementwise_gelu(self.dwconv_bn(self.dwconv(v)))

    def channel_map(self, x):
        """`[B, H, W, C] -> [B, 1, 1, C]` (before the sigmoid)."""
        pooled = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        return self.channel_2(elementwise_gelu(self.channel_bn(self.channel_1(pooled))))

    def spatial_map(self, x):
        """`[B, H, W, C] -> [B, H, W, 1]` (before the sigmoid)."""
        return self.spatial_2(elementwise_gelu(self.spatial_bn(self.spatial_1(x))))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads, "qkv_bias": self.qkv_bias}


@keras.saving.register_keras_serializable(package="sr_tf")
class AdaptiveSpatialAttention(_DualAggregation):
    """`[B, H, W, C] -> [B, H, W, C]`: rectangle-window attention (half the channels in
    `split_size[0] x split_size[1]` windows, half in the transposed ones) and the conv branch."""

    def __init__(self, dim: int, num_heads: int, split_size=(2, 4), shifted: bool = False, qkv_bias: bool = True,
                 **kwargs):
        super().__init__(dim, num_heads, qkv_bias, **kwargs)
        self.split_size, self.shifted = tuple(int(s) for s in split_size), bool(shifted)
        half, (s0, s1) = self.dim // 2, self.split_size
        self.branches = [WindowBranch(half, self.num_heads // 2, s0, s1, self.shifted, name="attns_0"),
                         WindowBranch(half, self.num_heads // 2, s1, s0, self.shifted, name="attns_1")]

    def call(self, x):
        c, half = self.dim, self.dim // 2
        h, w = tf.shape(x)[1], tf.shape(x)[2]
        qkv = self.qkv(x)
        conv_x = self.conv_branch(qkv[..., 2 * c:])
        m = max(self.split_size)
        qkv = tf.pad(qkv, [[0, 0], [0, (m - h % m) % m], [0, (m - w % m) % m], [0, 0]])
        outs = [branch(*(qkv[..., part * c + lo:part * c + lo + half] for part in range(3)))[:, :h, :w]
                for branch, lo in zip(self.branches, (0, half), strict=True)]
        attended = tf.concat(outs, axis=-1)
        mixed = attended * tf.sigmoid(self.channel_map(conv_x)) + tf.sigmoid(self.spatial_map(attended)) * conv_x
        return self.proj(mixed)

    def get_config(self):
        return {**super().get_config(), "split_size": list(self.split_size), "shifted": self.shifted}


@keras.saving.register_keras_serializable(package="sr_tf")
class AdaptiveChannelAttention(_DualAggregation):
    """`[B, H, W, C] -> [B, H, W, C]`: attention across channels (per head, over all H*W tokens,
    L2-normalised Q and K times a learned temperature) and the conv branch."""

    def build(self, input_shape):
        self.temperature = self.add_weight(shape=(self.num_heads, 1, 1), initializer="ones", name="temperature")
        super().build(input_shape)

    def call(self, x):
        b, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
        c, heads = self.dim, self.num_heads
        qkv = self.qkv(x)
        conv_x = self.conv_branch(qkv[..., 2 * c:])
        q, k, v = (tf.transpose(tf.reshape(qkv[..., i * c:(i + 1) * c], [b, h * w, heads, c // heads]), [0, 2, 3, 1])
                   for i in range(3))  # [B, heads, d, N]

        def normalize(t):  # torch.nn.functional.normalize: t / max(||t||, 1e-12)
            return t / tf.maximum(tf.norm(t, axis=-1, keepdims=True), tf.cast(1e-12, t.dtype))

        attn = tf.matmul(normalize(q), normalize(k), transpose_b=True) * tf.cast(self.temperature, q.dtype)
        out = tf.matmul(tf.nn.softmax(attn, axis=-1), v)  # [B, heads, d, N]
        attended = tf.reshape(tf.transpose(out, [0, 3, 1, 2]), [b, h, w, c])
        mixed = attended * tf.sigmoid(self.spatial_map(conv_x)) + conv_x * tf.sigmoid(self.channel_map(attended))
        return self.proj(mixed)


@keras.saving.register_keras_serializable(package="sr_tf")
class SGFN(_LazyBuild):
    """Spatial-gate feed-forward: `[B, H, W, dim] -> [B, H, W, dim]` with `hidden` channels (even)."""

    def __init__(self, dim: int, hidden: int, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.hidden = int(dim), int(hidden)
        self.fc1 = keras.layers.Dense(self.hidden, name="fc1")
        self.sg_norm = _norm("sg_norm")
        self.sg_conv = _depthwise("sg_conv")
        self.fc2 = keras.layers.Dense(self.dim, name="fc2")

    def build(self, input_shape):
        # fc1 and fc2 run as 2-D MatMuls (`layers.dense`, fused with their bias and fc1's GELU).
        self.fc1.build((None, self.dim))
        self.fc2.build((None, self.hidden // 2))
        super().build(input_shape)

    def call(self, x):
        x1, x2 = tf.split(dense(self.fc1, x, gelu), 2, axis=-1)
        return dense(self.fc2, x1 * self.sg_conv(self.sg_norm(x2)))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "hidden": self.hidden}


@keras.saving.register_keras_serializable(package="sr_tf")
class DATBlock(_LazyBuild):
    """Pre-norm block `[B, H, W, dim] -> same`: `x + attn(norm1(x))`, then `x + ffn(norm2(x))`.
    Spatial attention for even `block`, channel attention for odd, as in the paper."""

    def __init__(self, dim: int, num_heads: int, split_size=(2, 4), expansion_factor: float = 4.0,
                 qkv_bias: bool = True, group: int = 0, block: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.num_heads = int(dim), int(num_heads)
        self.split_size, self.expansion_factor = tuple(int(s) for s in split_size), float(expansion_factor)
        self.qkv_bias, self.group, self.block = bool(qkv_bias), int(group), int(block)
        self.norm1, self.norm2 = _norm("norm1"), _norm("norm2")
        if self.block % 2 == 0:
            self.attn = AdaptiveSpatialAttention(self.dim, self.num_heads, self.split_size,
                                                 is_shifted(self.group, self.block), self.qkv_bias, name="attn")
        else:
            self.attn = AdaptiveChannelAttention(self.dim, self.num_heads, self.qkv_bias, name="attn")
        self.ffn = SGFN(self.dim, int(self.dim * self.expansion_factor), name="ffn")

    def call(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads,
                "split_size": list(self.split_size), "expansion_factor": self.expansion_factor,
                "qkv_bias": self.qkv_bias, "group": self.group, "block": self.block}


def _resi_convs(dim: int, kind: str, prefix: str) -> list[keras.layers.Conv2D]:
    if kind == "1conv":
        return [_conv(dim, prefix)]
    return [_conv(dim // 4, f"{prefix}_0"), _conv(dim // 4, f"{prefix}_2", 1), _conv(dim, f"{prefix}_4")]


def _apply_resi(convs, x):
    """One conv, or "3conv": conv, LeakyReLU(0.2), 1x1 conv, LeakyReLU(0.2), conv."""
    for i, conv in enumerate(convs):
        x = conv(x if i == 0 else tf.nn.leaky_relu(x, 0.2))
    return x


@keras.saving.register_keras_serializable(package="sr_tf")
class ResidualGroup(_LazyBuild):
    """`depth` DAT blocks and a conv (or "3conv" stack), added to the group's input: `[B, H, W, dim] -> same`."""

    def __init__(self, dim: int, depth: int, num_heads: int, split_size=(2, 4), expansion_factor: float = 4.0,
                 qkv_bias: bool = True, resi_connection: str = "1conv", group: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.depth, self.num_heads = int(dim), int(depth), int(num_heads)
        self.split_size, self.expansion_factor = tuple(int(s) for s in split_size), float(expansion_factor)
        self.qkv_bias, self.resi_connection, self.group = bool(qkv_bias), resi_connection, int(group)
        self.blocks = [DATBlock(self.dim, self.num_heads, self.split_size, self.expansion_factor, self.qkv_bias,
                                self.group, i, name=f"blocks_{i}") for i in range(self.depth)]
        self.convs = _resi_convs(self.dim, resi_connection, "conv")

    def call(self, x):
        y = x
        for block in self.blocks:
            y = block(y)
        return x + _apply_resi(self.convs, y)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "depth": self.depth, "num_heads": self.num_heads,
                "split_size": list(self.split_size), "expansion_factor": self.expansion_factor,
                "qkv_bias": self.qkv_bias, "resi_connection": self.resi_connection, "group": self.group}


@keras.saving.register_keras_serializable(package="sr_tf")
class DAT(keras.Model):
    """`[N, H, W, C] float32 in [0, 1] -> [N, s*H, s*W, C] float32 (about [0, 1])`, any H and W.

    Args:
      in_chans: image channels (3; the output has as many). With 3, DIV2K's mean is subtracted
        first, otherwise nothing (as the authors' code does).
      embed_dim: feature width (published: 180; DAT-light 60). Even, at least 32.
      depth: blocks per residual group (published: six groups of 6; DAT-light one of 18).
      num_heads: attention heads per group (even; each window half gets half of them).
      split_size: `(height, width)` of the spatial windows (published (8, 32); DAT-S (8, 16)); the
        larger must be a multiple of the smaller.
      expansion_factor: SGFN hidden width over `embed_dim` (DAT 4, the others 2).
      qkv_bias: whether the QKV projections have a bias (published: True).
      upscale: 2, 3, 4 or 8 with "pixelshuffle"; also 1 with "pixelshuffledirect".
      img_range: the normalised input is `(x - mean) * img_range` (published: 1).
      resi_connection: "1conv" or "3conv" (a 3x3 -> 1x1 -> 3x3 stack at a quarter width; DAT-light).
      upsampler: "pixelshuffle" (a conv to `num_feat`, x2 / x3 conv + shuffle stages, a last conv)
        or "pixelshuffledirect" (one conv + shuffle; DAT-light).
      num_feat: width of the "pixelshuffle" upsampler (published: 64).
    """

    def __init__(
        self,
        in_chans: int = 3,
        embed_dim: int = 180,
        depth=(2, 2, 2, 2),
        num_heads=(2, 2, 2, 2),
        split_size=(2, 4),
        expansion_factor: float = 4.0,
        qkv_bias: bool = True,
        upscale: int = 2,
        img_range: float = 1.0,
        resi_connection: str = "1conv",
        upsampler: str = "pixelshuffle",
        num_feat: int = 64,
        **kwargs,
    ):
        super().__init__(**kwargs)
        validate_positive("DAT", in_chans=in_chans, embed_dim=embed_dim, num_feat=num_feat)
        if upsampler not in UPSAMPLERS:
            raise ValueError(f"DAT: `upsampler` must be one of {UPSAMPLERS}. Received: upsampler={upsampler!r}")
        if resi_connection not in RESI_CONNECTIONS:
            raise ValueError(f"DAT: `resi_connection` must be one of {RESI_CONNECTIONS}. "
                             f"Received: resi_connection={resi_connection!r}")
        depth, num_heads, split_size = (tuple(int(v) for v in a) for a in (depth, num_heads, split_size))
        if not depth or len(num_heads) != len(depth) or min(depth) < 1:
            raise ValueError(f"DAT: `depth` and `num_heads` need one positive entry per residual group. "
                             f"Received: depth={depth!r}, num_heads={num_heads!r}")
        if embed_dim < 32 or embed_dim % 2:
            raise ValueError(f"DAT: `embed_dim` must be even and at least 32. Received: embed_dim={embed_dim!r}")
        for heads in num_heads:
            if heads < 2 or heads % 2 or embed_dim % heads:
                raise ValueError(f"DAT: each of `num_heads` must be even and divide `embed_dim`. "
                                 f"Received: num_heads={num_heads!r}, embed_dim={embed_dim!r}")
        if len(split_size) != 2 or min(split_size) < 1 or max(split_size) % min(split_size):
            raise ValueError(f"DAT: `split_size` is (height, width), the larger a multiple of the smaller. "
                             f"Received: split_size={split_size!r}")
        hidden = int(embed_dim * float(expansion_factor))
        if hidden < 2 or hidden % 2:
            raise ValueError(f"DAT: `embed_dim * expansion_factor` must be an even width. "
                             f"Received: expansion_factor={expansion_factor!r}")
        if not float(img_range) > 0:
            raise ValueError(f"DAT: `img_range` must be positive. Received: img_range={img_range!r}")
        self.in_chans, self.embed_dim = int(in_chans), int(embed_dim)
        self.depth, self.num_heads, self.split_size = depth, num_heads, split_size
        self.expansion_factor, self.qkv_bias = float(expansion_factor), bool(qkv_bias)
        self.upscale = validate_scale("DAT", upscale, SCALES[upsampler])
        self.img_range, self.resi_connection, self.upsampler = float(img_range), resi_connection, upsampler
        self.num_feat = int(num_feat)
        self.rgb_mean = DIV2K_RGB_MEAN if self.in_chans == 3 else (0.0,) * self.in_chans

        d = self.embed_dim
        self.conv_first = _conv(d, "conv_first")
        self.before_rg_norm = _norm("before_RG")
        self.groups = [ResidualGroup(d, n, heads, split_size, self.expansion_factor, self.qkv_bias, resi_connection,
                                     i, name=f"layers_{i}") for i, (n, heads) in enumerate(zip(depth, num_heads, strict=True))]
        self.norm = _norm("norm")
        self.conv_after_body = _resi_convs(d, resi_connection, "conv_after_body")
        if upsampler == "pixelshuffle":
            self.conv_before_upsample = _conv(self.num_feat, "conv_before_upsample")
            factors = [3] if self.upscale == 3 else [2] * (self.upscale.bit_length() - 1)
            self.upsample = [_conv(self.num_feat * f * f, f"upsample_{2 * i}") for i, f in enumerate(factors)]
            self.shuffles = [PixelShuffle(f, name=f"shuffle_{i}") for i, f in enumerate(factors)]
            self.conv_last = _conv(self.in_chans, "conv_last")
        else:
            self.upsample = [_conv(self.in_chans * self.upscale**2, "upsample_0")]
            self.shuffles = [PixelShuffle(self.upscale, name="shuffle_0")]

    @property
    def scale(self) -> int:
        return self.upscale

    def build(self, input_shape):
        # One eager call on a 4x4 image builds every sublayer; Keras' default (a symbolic trace of
        # the whole network) took seconds.
        self.call(tf.zeros([1, 4, 4, self.in_chans], self.compute_dtype))

    def call(self, x):
        mean = tf.constant(self.rgb_mean, x.dtype)
        x = (x - mean) * tf.cast(self.img_range, x.dtype)
        x = self.conv_first(x)
        y = self.before_rg_norm(x)
        for group in self.groups:
            y = group(y)
        x = x + _apply_resi(self.conv_after_body, self.norm(y))
        if self.upsampler == "pixelshuffle":
            x = tf.nn.leaky_relu(self.conv_before_upsample(x), 0.01)  # nn.LeakyReLU()'s default slope
        for conv, shuffle in zip(self.upsample, self.shuffles, strict=True):
            x = shuffle(conv(x))
        if self.upsampler == "pixelshuffle":
            x = self.conv_last(x)
        x = x / tf.cast(self.img_range, x.dtype) + tf.cast(mean, x.dtype)
        return to_output_dtype(x)

    def get_config(self):
        return {
            **super().get_config(),
            "in_chans": self.in_chans,
            "embed_dim": self.embed_dim,
            "depth": list(self.depth),
            "num_heads": list(self.num_heads),
            "split_size": list(self.split_size),
            "expansion_factor": self.expansion_factor,
            "qkv_bias": self.qkv_bias,
            "upscale": self.upscale,
            "img_range": self.img_range,
            "resi_connection": self.resi_connection,
            "upsampler": self.upsampler,
            "num_feat": self.num_feat,
        }
