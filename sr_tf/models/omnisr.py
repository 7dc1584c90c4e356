"""OmniSR (Wang et al., CVPR 2023, "Omni Aggregation Networks for Lightweight Image Super-Resolution").

A 3x3 conv to `num_feat` channels, `res_num` OSAGs, a 3x3 conv plus the long skip, then a 3x3 conv to
`num_out_ch * up_scale**2` channels and a pixel shuffle. An OSAG (omni self-attention group) is
`block_num` OSA blocks and a 1x1 conv around a skip, then ESA (enhanced spatial attention: a sigmoid
mask from a strided conv, a 7x7 / stride 3 max pool, a 3x3 conv and a bilinear upsampling).

An OSA block runs, each step with its own residual:

1. MBConv: 1x1 conv, GELU, 3x3 depthwise conv, GELU, squeeze-excitation (mean, C -> C/4 -> C, SiLU,
   sigmoid), 1x1 conv;
2. spatial attention in `window_size x window_size` blocks (LayerNorm eps 1e-5, 4 heads, a learned
   relative position bias when `pe`), then a gated feed-forward (channel LayerNorm eps 1e-6, 1x1 conv
   to 2C, 3x3 depthwise, `GELU(first half) * second half`, 1x1 conv);
3. channel attention inside each block (4 heads; L2-normalised Q and K over the block's pixels, a
   learned temperature per head), then a gated feed-forward;
4. the same spatial attention over a sparse grid (the pixels `H / window_size` apart form one
   `window_size x window_size` group), then a gated feed-forward;
5. channel attention over the grid (each position within a block, across all blocks), then a gated
   feed-forward.

Any H x W works: as in spandrel's OmniSR, the input is zero-padded at the bottom/right to a multiple
of `window_size` and the output cropped back, so sizes that are no window multiple give PyTorch's
numbers. Inputs under 15 rows or columns (where ESA's pool has no output; spandrel asks for 16) are
zero-padded further, to the smallest window multiple of at least 15.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from sr_tf.models.channel_norms import channel_layer_norm
from sr_tf.models.layers import (
    LazyBuild,
    PixelShuffle,
    dense,
    gelu,
    to_output_dtype,
    validate_positive,
)
from sr_tf.models.window_attention import attend, layer_norm, relative_position_index, split_heads

HEADS = 4  # both attentions: spatial heads are C // (C // 4), channel heads are fixed to 4
CHANNEL_NORM_EPS = 1e-6  # the authors' LayerNorm2d before the feed-forwards and channel attentions
MIN_SIZE = 15  # ESA: a 3x3 stride-2 valid conv then a 7x7 stride-3 max pool need 15 rows and columns
SE_SHRINKAGE = 0.25


def _conv(filters: int, kernel: int, name: str, use_bias: bool = True) -> keras.layers.Conv2D:
    return keras.layers.Conv2D(filters, kernel, padding="same", use_bias=use_bias, name=name)


def _depthwise(name: str, use_bias: bool) -> keras.layers.DepthwiseConv2D:
    # not Conv2D(groups=C): Keras runs grouped convs through XLA on the CPU, compiling per shape
    return keras.layers.DepthwiseConv2D(3, padding="same", use_bias=use_bias, name=name)


def to_groups(x: tf.Tensor, inner_h, inner_w, tokens_inner: bool) -> tf.Tensor:
    """`[N, H, W, C]` seen as `[N, H / inner_h, inner_h, W / inner_w, inner_w, C]` -> `[G, T, C]`.

    `tokens_inner`: the tokens of a group are one `inner_h x inner_w` block (groups: the blocks);
    otherwise they are the blocks' `(H / inner_h) x (W / inner_w)` grid at one position within the
    block (groups: the positions). Token order is row-major either way.
    """
    n, h, w, c = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2], x.shape[-1]
    x = tf.reshape(x, [n, h // inner_h, inner_h, w // inner_w, inner_w, c])
    if tokens_inner:
        return tf.reshape(tf.transpose(x, [0, 1, 3, 2, 4, 5]), [-1, inner_h * inner_w, c])
    return tf.reshape(tf.transpose(x, [0, 2, 4, 1, 3, 5]), [-1, (h // inner_h) * (w // inner_w), c])


def from_groups(t: tf.Tensor, n, h, w, inner_h, inner_w, tokens_inner: bool) -> tf.Tensor:
    """Inverse of `to_groups`: `[G, T, C] -> [N, H, W, C]`."""
    c = t.shape[-1]
    if tokens_inner:
        x = tf.transpose(tf.reshape(t, [n, h // inner_h, w // inner_w, inner_h, inner_w, c]), [0, 1, 3, 2, 4, 5])
    else:
        x = tf.transpose(tf.reshape(t, [n, inner_h, inner_w, h // inner_h, w // inner_w, c]), [0, 3, 1, 4, 2, 5])
    return tf.reshape(x, [n, h, w, c])


@keras.saving.register_keras_serializable(package="sr_tf")
class MBConv(LazyBuild):
    """`x + conv1x1(SE(GELU(dw3x3(GELU(conv1x1(x))))))`: `[N, H, W, dim] -> [N, H, W, dim]` (expansion 1)."""

    def __init__(self, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.dim = int(dim)
        self.conv_in = _conv(self.dim, 1, "conv_in")
        self.dwconv = _depthwise("dwconv", use_bias=True)
        self.se_reduce = keras.layers.Dense(int(self.dim * SE_SHRINKAGE), use_bias=False, name="se_reduce")
        self.se_expand = keras.layers.Dense(self.dim, use_bias=False, name="se_expand")
        self.conv_out = _conv(self.dim, 1, "conv_out")

    def call(self, x):
        y = gelu(self.dwconv(gelu(self.conv_in(x))))
        gate = tf.sigmoid(self.se_expand(tf.nn.silu(self.se_reduce(tf.reduce_mean(y, axis=[1, 2])))))
        return self.conv_out(y * gate[:, None, None, :]) + x

    def get_config(self):
        return {**super().get_config(), "dim": self.dim}


@keras.saving.register_keras_serializable(package="sr_tf")
class SpatialAttention(LazyBuild):
    """`x + attention(LN(x))` among the `window_size**2` pixels of a block (`grid=False`) or of a sparse
    grid (`grid=True`): `[N, H, W, dim] -> [N, H, W, dim]`, H and W multiples of `window_size`."""

    def __init__(self, dim: int, window_size: int, pe: bool = True, grid: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.window_size, self.pe, self.grid = int(dim), int(window_size), bool(pe), bool(grid)
        self.scale = (self.dim // HEADS) ** -0.5
        self.norm = layer_norm("norm")
        self.to_qkv = keras.layers.Dense(3 * self.dim, use_bias=False, name="to_qkv")
        self.to_out = keras.layers.Dense(self.dim, use_bias=False, name="to_out")
        # the authors' `rel_pos_indices` is Swin's relative position index
        self._index = relative_position_index(self.window_size).reshape(-1) if self.pe else None

    def build(self, input_shape):
        if self.pe:
            self.rel_pos_bias = self.add_weight(shape=((2 * self.window_size - 1) ** 2, HEADS), name="rel_pos_bias",
                                                initializer=keras.initializers.RandomNormal(stddev=1.0))
        self.to_qkv.build((None, self.dim))  # called through `dense`, not `__call__`
        self.to_out.build((None, self.dim))
        super().build(input_shape)

    def relative_bias(self, dtype) -> tf.Tensor | None:
        """`[HEADS, ws*ws, ws*ws]` (None without `pe`)."""
        if not self.pe:
            return None
        n = self.window_size**2
        table = tf.cast(self.rel_pos_bias, dtype)
        return tf.transpose(tf.reshape(tf.gather(table, self._index), [n, n, HEADS]), [2, 0, 1])

    def call(self, x):
        n, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
        ws = self.window_size
        inner = (h // ws, w // ws) if self.grid else (ws, ws)
        tokens = to_groups(self.norm(x), *inner, tokens_inner=not self.grid)
        q, k, v = (split_heads(t, HEADS) for t in tf.split(dense(self.to_qkv, tokens), 3, axis=-1))
        out = attend(q, k, v, self.relative_bias(q.dtype), scale=self.scale)
        return x + from_groups(dense(self.to_out, out), n, h, w, *inner, tokens_inner=not self.grid)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "window_size": self.window_size, "pe": self.pe,
                "grid": self.grid}


@keras.saving.register_keras_serializable(package="sr_tf")
class ChannelAttention(LazyBuild):
    """`x + project_out(attention across channels(LN(x)))` per `window_size` block (`grid=False`) or per
    position within the blocks, across all blocks (`grid=True`): `[N, H, W, dim] -> [N, H, W, dim]`."""

    def __init__(self, dim: int, window_size: int, grid: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.window_size, self.grid = int(dim), int(window_size), bool(grid)
        self.norm = channel_layer_norm(CHANNEL_NORM_EPS, "norm")
        self.qkv = _conv(3 * self.dim, 1, "qkv", use_bias=False)
        self.qkv_dwconv = _depthwise("qkv_dwconv", use_bias=False)
        self.project_out = _conv(self.dim, 1, "project_out", use_bias=False)

    def build(self, input_shape):
        self.temperature = self.add_weight(shape=(HEADS, 1, 1), initializer="ones", name="temperature")
        super().build(input_shape)

    def call(self, x):
        n, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
        ws = self.window_size
        qkv = self.qkv_dwconv(self.qkv(self.norm(x)))
        # [G, heads, T, d]; torch's F.normalize(t, dim=tokens) is t / max(||t||, 1e-12)
        q, k, v = (split_heads(to_groups(t, ws, ws, tokens_inner=not self.grid), HEADS)
                   for t in tf.split(qkv, 3, axis=-1))
        q, k = (tf.math.l2_normalize(t, axis=2, epsilon=1e-24) for t in (q, k))
        attn = tf.matmul(q, k, transpose_a=True) * tf.cast(self.temperature, q.dtype)[None]  # [G, heads, d, d]
        out = tf.matmul(v, tf.nn.softmax(attn, axis=-1), transpose_b=True)  # [G, heads, T, d]
        out = tf.transpose(out, [0, 2, 1, 3])
        out = tf.reshape(out, [tf.shape(out)[0], tf.shape(out)[1], self.dim])
        return x + self.project_out(from_groups(out, n, h, w, ws, ws, tokens_inner=not self.grid))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "window_size": self.window_size, "grid": self.grid}


@keras.saving.register_keras_serializable(package="sr_tf")
class GatedFeedForward(LazyBuild):
    """`x + project_out(GELU(a) * b)` with `a, b = dw3x3(project_in(LN(x)))` split in halves (no biases)."""

    def __init__(self, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.dim = int(dim)
        self.norm = channel_layer_norm(CHANNEL_NORM_EPS, "norm")
        self.project_in = _conv(2 * self.dim, 1, "project_in", use_bias=False)
        self.dwconv = _depthwise("dwconv", use_bias=False)
        self.project_out = _conv(self.dim, 1, "project_out", use_bias=False)

    def call(self, x):
        a, b = tf.split(self.dwconv(self.project_in(self.norm(x))), 2, axis=-1)
        return x + self.project_out(gelu(a) * b)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim}


@keras.saving.register_keras_serializable(package="sr_tf")
class OSABlock(LazyBuild):
    """MBConv, then block/grid spatial and channel attentions, each followed by a gated feed-forward
    (see the module docstring): `[N, H, W, dim] -> [N, H, W, dim]`, H and W multiples of `window_size`."""

    def __init__(self, dim: int, window_size: int, pe: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.window_size, self.pe = int(dim), int(window_size), bool(pe)
        d, ws = self.dim, self.window_size
        self.mbconv = MBConv(d, name="mbconv")
        self.block_attn = SpatialAttention(d, ws, self.pe, grid=False, name="block_attn")
        self.block_channel_attn = ChannelAttention(d, ws, grid=False, name="block_channel_attn")
        self.grid_attn = SpatialAttention(d, ws, self.pe, grid=True, name="grid_attn")
        self.grid_channel_attn = ChannelAttention(d, ws, grid=True, name="grid_channel_attn")
        self.ffns = [GatedFeedForward(d, name=f"ffn_{i}") for i in range(4)]

    def call(self, x):
        x = self.ffns[0](self.block_attn(self.mbconv(x)))
        x = self.ffns[1](self.block_channel_attn(x))
        x = self.ffns[2](self.grid_attn(x))
        return self.ffns[3](self.grid_channel_attn(x))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "window_size": self.window_size, "pe": self.pe}


@keras.saving.register_keras_serializable(package="sr_tf")
class ESA(LazyBuild):
    """Enhanced spatial attention: `x * sigmoid(mask)`, `[N, H, W, dim] -> [N, H, W, dim]` (H, W >= 15)."""

    def __init__(self, channels: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.dim = int(channels), int(dim)
        f = self.channels
        self.conv1 = _conv(f, 1, "conv1")
        self.conv_f = _conv(f, 1, "conv_f")
        self.conv2 = keras.layers.Conv2D(f, 3, strides=2, padding="valid", name="conv2")
        self.conv3 = _conv(f, 3, "conv3")
        self.conv4 = _conv(self.dim, 1, "conv4")

    def call(self, x):
        c1_ = self.conv1(x)
        pooled = tf.nn.max_pool2d(self.conv2(c1_), 7, 3, "VALID")
        # half-pixel bilinear with the edge clamped: torch's interpolate(align_corners=False) upsampling
        c3 = tf.cast(tf.image.resize(self.conv3(pooled), tf.shape(x)[1:3], "bilinear"), x.dtype)
        return x * tf.sigmoid(self.conv4(c3 + self.conv_f(c1_)))

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "dim": self.dim}


@keras.saving.register_keras_serializable(package="sr_tf")
class OSAG(LazyBuild):
    """`ESA(conv1x1(blocks(x)) + x)`: `[N, H, W, dim] -> [N, H, W, dim]`."""

    def __init__(self, dim: int, block_num: int, window_size: int, pe: bool = True, bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.block_num, self.window_size = int(dim), int(block_num), int(window_size)
        self.pe, self.bias = bool(pe), bool(bias)
        self.blocks = [OSABlock(self.dim, self.window_size, self.pe, name=f"block_{i}") for i in range(self.block_num)]
        self.conv = _conv(self.dim, 1, "conv", use_bias=self.bias)
        self.esa = ESA(max(self.dim // 4, 16), self.dim, name="esa")

    def call(self, x):
        out = x
        for block in self.blocks:
            out = block(out)
        return self.esa(self.conv(out) + x)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "block_num": self.block_num,
                "window_size": self.window_size, "pe": self.pe, "bias": self.bias}


@keras.saving.register_keras_serializable(package="sr_tf")
class OmniSR(keras.Model):
    """`[N, H, W, num_in_ch] float32 in [0, 1] -> [N, s*H, s*W, num_out_ch] float32 (about [0, 1])`, any H, W.

    Args (spandrel's names; published: 64 features, 5 groups of 1 block, window 8, pe, bias, x2/x3/x4):
      num_in_ch, num_out_ch: image channels.
      num_feat: feature width, a multiple of 4.
      block_num: OSA blocks per group.
      pe: relative position bias in the spatial attentions.
      window_size: block side of the attentions.
      res_num: groups (OSAGs).
      up_scale: the pixel shuffle's factor (1 for restoration).
      bias: biases in the head, body-end, group-end and upsampling convs.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, block_num: int = 1,
                 pe: bool = True, window_size: int = 8, res_num: int = 1, up_scale: int = 4, bias: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        validate_positive("OmniSR", num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat,
                          block_num=block_num, window_size=window_size, res_num=res_num, up_scale=up_scale)
        if num_feat % HEADS:
            raise ValueError(f"OmniSR: `num_feat` must be a multiple of {HEADS}. Received: num_feat={num_feat!r}")
        self.num_in_ch, self.num_out_ch, self.num_feat = int(num_in_ch), int(num_out_ch), int(num_feat)
        self.block_num, self.pe, self.window_size = int(block_num), bool(pe), int(window_size)
        self.res_num, self.up_scale, self.bias = int(res_num), int(up_scale), bool(bias)
        d = self.num_feat
        self.input_conv = _conv(d, 3, "input", use_bias=self.bias)
        self.groups = [OSAG(d, self.block_num, self.window_size, self.pe, self.bias, name=f"residual_layer_{i}")
                       for i in range(self.res_num)]
        self.output_conv = _conv(d, 3, "output", use_bias=self.bias)
        self.up = _conv(self.num_out_ch * self.up_scale**2, 3, "up", use_bias=self.bias)
        self.shuffle = PixelShuffle(self.up_scale, name="pixel_shuffle")

    @property
    def scale(self) -> int:
        return self.up_scale

    def build(self, input_shape):
        # One eager call builds every sublayer; Keras' default (a symbolic trace) is slow.
        self.call(tf.zeros([1, MIN_SIZE, MIN_SIZE, self.num_in_ch], self.compute_dtype))

    def padded_size(self, size):
        """The size `size` (an int32 tensor) is zero-padded to: a multiple of `window_size`, at least 15."""
        ws = self.window_size
        return tf.maximum(size + (-size) % ws, -(-MIN_SIZE // ws) * ws)

    def call(self, x):
        h, w = tf.shape(x)[1], tf.shape(x)[2]
        x = tf.pad(x, [[0, 0], [0, self.padded_size(h) - h], [0, self.padded_size(w) - w], [0, 0]])
        residual = self.input_conv(x)
        out = residual
        for group in self.groups:
            out = group(out)
        out = self.shuffle(self.up(self.output_conv(out) + residual))
        return to_output_dtype(out[:, :h * self.up_scale, :w * self.up_scale, :])

    def get_config(self):
        return {**super().get_config(), "num_in_ch": self.num_in_ch, "num_out_ch": self.num_out_ch,
                "num_feat": self.num_feat, "block_num": self.block_num, "pe": self.pe,
                "window_size": self.window_size, "res_num": self.res_num, "up_scale": self.up_scale,
                "bias": self.bias}
