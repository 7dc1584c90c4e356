"""Blocks shared by window-attention SR transformers (SwinIR, HAT): Swin's (shifted) window attention.

Feature maps stay `[N, H, W, C]` throughout (channels last): the PyTorch originals' patch embedding
(`[N, C, H, W] -> [N, H*W, C]`, patch size 1) and unembedding are plain reshapes in that layout, so
here they are no-ops, and their LayerNorms apply to the last axis directly.

Attention runs inside non-overlapping `window_size x window_size` windows, so H and W must be
multiples of the window: models pad their input with `pad_to_window` (mirrored, as the originals'
`check_image_size`) and crop their output back, so any H x W works. Every shape is read at run time
(`tf.shape`), and the shifted-window mask is computed for the actual padded size in `call`, so a
traced function or SavedModel with `None` H and W serves every size. No weight depends on a
training image size.

Layouts follow the PyTorch modules, so checkpoints map one to one: `qkv` is one Dense with outputs
ordered `(3, heads, head_dim)`, the relative position bias table is `[(2*ws-1)**2, heads]` indexed
by `relative_position_index(ws)`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from sr_tf.models.channel_norms import LayerNorm
from sr_tf.models.layers import border_pad, dense, gelu

LAYER_NORM_EPSILON = 1e-5  # torch's nn.LayerNorm default
MASKED = -100.0  # what the originals add to attention logits across shifted-window regions


def layer_norm(name: str) -> LayerNorm:
    """torch's `nn.LayerNorm(C)` over the last axis."""
    return LayerNorm(epsilon=LAYER_NORM_EPSILON, name=name)


def pad_to_window(x: tf.Tensor, window_size: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """`[N, H, W, C]` padded at the bottom/right by reflection (edge not repeated, torch's "reflect")
    to multiples of `window_size`; also returns the original H and W (int32 scalars) to crop back to."""
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    return border_pad(x, 0, (-h) % window_size, 0, (-w) % window_size, "reflect"), h, w


def window_partition(x: tf.Tensor, window_size: int) -> tf.Tensor:
    """`[N, H, W, C] -> [N * H/ws * W/ws, ws*ws, C]`, windows in row-major order per image."""
    ws, c = window_size, x.shape[-1]
    n, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    x = tf.reshape(x, [n, h // ws, ws, w // ws, ws, -1 if c is None else c])
    x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
    return tf.reshape(x, [-1, ws * ws, tf.shape(x)[-1]])


def window_reverse(windows: tf.Tensor, window_size: int, height, width) -> tf.Tensor:
    """Inverse of `window_partition`: `[N * nW, ws*ws, C] -> [N, height, width, C]`."""
    ws, c = window_size, windows.shape[-1]
    x = tf.reshape(windows, [-1, height // ws, width // ws, ws, ws, -1 if c is None else c])
    x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
    return tf.reshape(x, [-1, height, width, tf.shape(x)[-1]])


def relative_position_index(window_size: int) -> np.ndarray:
    """`[ws*ws, ws*ws]` int32: row of the bias table for each (query, key) pair of a window
    (Swin's `relative_position_index` buffer, which the checkpoints also store)."""
    ws = window_size
    coords = np.stack(np.meshgrid(np.arange(ws), np.arange(ws), indexing="ij")).reshape(2, -1)
    rel = coords[:, :, None] - coords[:, None, :] + (ws - 1)  # [2, N, N], from 0
    return (rel[0] * (2 * ws - 1) + rel[1]).astype(np.int32)


def shifted_window_mask(height, width, window_size: int, shift_size: int) -> tf.Tensor:
    """`[nW, ws*ws, ws*ws]` float32, 0 within a region and -100 across: the attention mask of
    shifted windows for a `height x width` map (multiples of the window; tensors or ints).

    After the cyclic shift by `shift_size`, the last windows of each axis join pixels of up to
    three regions (`[0, H-ws)`, `[H-ws, H-shift)`, `[H-shift, H)`, likewise along W); as in the
    originals, tokens attend only to tokens of their own region.
    """

    def region(size):
        i = tf.range(size)
        return tf.where(i < size - window_size, 0, tf.where(i < size - shift_size, 1, 2))

    ids = region(height)[:, None] * 3 + region(width)[None, :]
    windows = window_partition(tf.cast(ids, tf.float32)[None, :, :, None], window_size)[..., 0]  # [nW, N]
    diff = windows[:, None, :] - windows[:, :, None]
    return tf.where(diff != 0, MASKED, 0.0)


def attend(q, k, v, bias, mask=None, scale=None):
    """Multi-head attention of windows: q `[B_, h, Nq, d]` (already scaled, or scaled by `scale` here),
    k, v `[B_, h, Nk, d]`, bias `[h, Nq, Nk]` or None, mask `[nW, Nq, Nk]` or None (B_ = N * nW).
    Returns `[B_, Nq, h*d]`."""
    return merge_heads(attention(q, k, v, bias, mask, scale))


def attention(q, k, v, bias, mask=None, scale=None):
    """As `attend`, returning the heads apart: `[B_, h, Nq, d]`.

    `softmax(q @ k^T * scale + bias (+ mask)) @ v`: the scale after the product (one ulp from scaling q
    first, as the originals do) lets oneDNN fuse the BatchMatMul with the Mul and Add; with a mask,
    bias and mask are summed once (`[nW, h, Nq, Nk]`) and added to the logits seen per window.
    """
    logits = tf.matmul(q, k, transpose_b=True)
    if scale is not None:
        logits = logits * tf.cast(scale, logits.dtype)
    if mask is not None:
        heads, nq, nk = tf.shape(logits)[1], tf.shape(logits)[2], tf.shape(logits)[3]
        nw = tf.shape(mask)[0]
        add = tf.cast(mask, logits.dtype)[:, None]
        if bias is not None:
            add = add + bias[None]
        logits = tf.reshape(tf.reshape(logits, [-1, nw, heads, nq, nk]) + add[None], [-1, heads, nq, nk])
    elif bias is not None:
        logits = logits + bias[None]
    return tf.matmul(tf.nn.softmax(logits, axis=-1), v)


def merge_heads(x):
    """`[B_, h, N, d] -> [B_, N, h*d]`."""
    out = tf.transpose(x, [0, 2, 1, 3])
    return tf.reshape(out, [tf.shape(out)[0], tf.shape(out)[1], x.shape[1] * x.shape[3]])


def window_heads(qkv: tf.Tensor, window_size: int, num_heads: int):
    """`[N, H, W, 3*h*d]` (the qkv projection of every pixel, H and W window multiples) -> q, k, v
    `[N * nW, h, ws*ws, d]`: the window partition and the head split in one transpose."""
    ws, d = window_size, qkv.shape[-1] // (3 * num_heads)
    n, h, w = tf.shape(qkv)[0], tf.shape(qkv)[1], tf.shape(qkv)[2]
    x = tf.reshape(qkv, [n, h // ws, ws, w // ws, ws, 3, num_heads, d])
    x = tf.reshape(tf.transpose(x, [5, 0, 1, 3, 6, 2, 4, 7]), [3, -1, num_heads, ws * ws, d])
    return x[0], x[1], x[2]  # slices of the first axis share the buffer


def merge_windows(x: tf.Tensor, window_size: int, n, height, width) -> tf.Tensor:
    """Inverse of `window_heads` for one of q, k, v: `[N * nW, h, ws*ws, d] -> [N, H, W, h*d]`."""
    ws, heads, d = window_size, x.shape[1], x.shape[3]
    x = tf.reshape(x, [n, height // ws, width // ws, heads, ws, ws, d])
    return tf.reshape(tf.transpose(x, [0, 1, 4, 2, 5, 3, 6]), [n, height, width, heads * d])


def split_heads(x, num_heads: int):
    """`[B_, N, h*d] -> [B_, h, N, d]`."""
    d = x.shape[-1] // num_heads
    x = tf.reshape(x, [tf.shape(x)[0], tf.shape(x)[1], num_heads, d])
    return tf.transpose(x, [0, 2, 1, 3])


@keras.saving.register_keras_serializable(package="sr_tf")
class Mlp(keras.layers.Layer):
    """`fc1 -> exact GELU -> fc2` on the last axis: `[..., C] -> [..., C]` (hidden width `hidden`)."""

    def __init__(self, dim: int, hidden: int, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.hidden = int(dim), int(hidden)
        self.fc1 = keras.layers.Dense(self.hidden, name="fc1")
        self.fc2 = keras.layers.Dense(self.dim, name="fc2")

    def build(self, input_shape):
        self.fc1.build((None, self.dim))
        self.fc2.build((None, self.hidden))
        self.built = True

    def call(self, x):
        return dense(self.fc2, dense(self.fc1, x, gelu))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "hidden": self.hidden}


@keras.saving.register_keras_serializable(package="sr_tf")
class WindowAttention(keras.layers.Layer):
    """(Shifted) window multi-head self-attention with a learned relative position bias.

    `call(x, mask)`: x `[N, H, W, C]` (H, W multiples of `window_size`, already normalised),
    mask from `shifted_window_mask` (used only when `shift_size > 0`) -> `[N, H, W, C]`.
    Weights as torch's `WindowAttention`: `qkv` (C -> 3C), `proj` (C -> C) and
    `relative_position_bias_table` `[(2*ws-1)**2, num_heads]`.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, shift_size: int = 0,
                 qkv_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        if dim % num_heads:
            raise ValueError(f"WindowAttention: `dim` must be a multiple of `num_heads`. Received: dim={dim}, "
                             f"num_heads={num_heads}")
        if not 0 <= shift_size < window_size:
            raise ValueError(f"WindowAttention: `shift_size` must be in [0, window_size). Received: "
                             f"shift_size={shift_size}, window_size={window_size}")
        self.dim, self.num_heads = int(dim), int(num_heads)
        self.window_size, self.shift_size = int(window_size), int(shift_size)
        self.qkv_bias = bool(qkv_bias)
        self.scale = (self.dim // self.num_heads) ** -0.5
        self.qkv = keras.layers.Dense(3 * self.dim, use_bias=self.qkv_bias, name="qkv")
        self.proj = keras.layers.Dense(self.dim, name="proj")
        self._index = relative_position_index(self.window_size).reshape(-1)

    def build(self, input_shape):
        self.relative_position_bias_table = self.add_weight(
            shape=((2 * self.window_size - 1) ** 2, self.num_heads), name="relative_position_bias_table",
            initializer=keras.initializers.TruncatedNormal(stddev=0.02))
        self.qkv.build((None, self.dim))
        self.proj.build((None, self.dim))
        self.built = True

    def relative_bias(self, dtype) -> tf.Tensor:
        """`[num_heads, ws*ws, ws*ws]`."""
        n = self.window_size**2
        table = tf.cast(self.relative_position_bias_table, dtype)
        return tf.transpose(tf.reshape(tf.gather(table, self._index), [n, n, self.num_heads]), [2, 0, 1])

    def call(self, x, mask=None):
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        shift = self.shift_size
        if shift:
            x = tf.roll(x, [-shift, -shift], axis=[1, 2])
        q, k, v = window_heads(dense(self.qkv, x), self.window_size, self.num_heads)
        out = attention(q, k, v, self.relative_bias(q.dtype), mask if shift else None, self.scale)
        out = dense(self.proj, merge_windows(out, self.window_size, tf.shape(x)[0], height, width))
        return tf.roll(out, [shift, shift], axis=[1, 2]) if shift else out

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads,
                "window_size": self.window_size, "shift_size": self.shift_size, "qkv_bias": self.qkv_bias}


@keras.saving.register_keras_serializable(package="sr_tf")
class SwinTransformerBlock(keras.layers.Layer):
    """`x + attn(norm1(x))`, then `+ mlp(norm2(.))`: `call(x, mask)` with x `[N, H, W, C]` (window multiples)."""

    def __init__(self, dim: int, num_heads: int, window_size: int, shift_size: int = 0,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.num_heads, self.window_size, self.shift_size = int(dim), int(num_heads), int(window_size), int(shift_size)
        self.mlp_ratio, self.qkv_bias = float(mlp_ratio), bool(qkv_bias)
        self.norm1 = layer_norm("norm1")
        self.attn = WindowAttention(self.dim, self.num_heads, self.window_size, self.shift_size, self.qkv_bias, name="attn")
        self.norm2 = layer_norm("norm2")
        self.mlp = Mlp(self.dim, int(self.dim * self.mlp_ratio), name="mlp")

    def build(self, input_shape):
        for layer in (self.norm1, self.norm2, self.attn, self.mlp):
            layer.build((None, None, None, self.dim))
        self.built = True

    def call(self, x, mask=None):
        x = x + self.attn(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads, "window_size": self.window_size,
                "shift_size": self.shift_size, "mlp_ratio": self.mlp_ratio, "qkv_bias": self.qkv_bias}
