"""Copying PyTorch tensors into built Keras layers, each shape checked against the layer.

The expected PyTorch shape is derived from the Keras layer, so a checkpoint tensor of the wrong
shape fails with `CheckpointError` naming the tensor (through `StateDict.take`), before any
weight is set. Layouts: Conv2d `[out, in, kh, kw]` -> Conv2D `[kh, kw, in, out]`; ConvTranspose2d
`[in, out, kh, kw]` -> Conv2DTranspose `[kh, kw, out, in]` (both scatter the same way, no flip);
a 1x1 Conv2d used as a dense layer `[out, in, 1, 1]` -> Dense `[in, out]`; PReLU `[C]` -> `[1, 1, C]`.
"""

from __future__ import annotations

import keras
import numpy as np

from sr_tf.checkpoints.state import StateDict


def set_conv(layer: keras.layers.Conv2D, state: StateDict, prefix: str, *, out_perm=None, in_perm=None) -> None:
    """`prefix.weight` (and `prefix.bias` if the layer has one) into a built Conv2D.

    `out_perm` / `in_perm` reorder the Keras kernel's output / input channels
    (`kernel[..., out_perm]`), for convs next to a pixel (un)shuffle.
    """
    kh, kw, cin, cout = (int(d) for d in layer.kernel.shape)
    kernel = state.take(f"{prefix}.weight", (cout, cin, kh, kw)).transpose(2, 3, 1, 0)
    values = [kernel]
    if layer.use_bias:
        values.append(state.take(f"{prefix}.bias", (cout,)))
    if out_perm is not None:
        values = [v[..., out_perm] for v in values]
    if in_perm is not None:
        values[0] = values[0][:, :, in_perm, :]
    layer.set_weights(values)


def set_conv_transpose(layer: keras.layers.Conv2DTranspose, state: StateDict, prefix: str) -> None:
    """`prefix.weight` `[in, out, kh, kw]` and `prefix.bias` into a built Conv2DTranspose."""
    kh, kw, cout, cin = (int(d) for d in layer.kernel.shape)
    kernel = state.take(f"{prefix}.weight", (cin, cout, kh, kw)).transpose(2, 3, 1, 0)
    layer.set_weights([kernel, state.take(f"{prefix}.bias", (cout,))])


def set_dense_from_conv1x1(layer: keras.layers.Dense, state: StateDict, prefix: str) -> None:
    """A 1x1 Conv2d `prefix.weight` `[out, in, 1, 1]` (and bias) into a built Dense `[in, out]`."""
    cin, cout = (int(d) for d in layer.kernel.shape)
    values = [state.take(f"{prefix}.weight", (cout, cin, 1, 1))[:, :, 0, 0].T]
    if layer.use_bias:
        values.append(state.take(f"{prefix}.bias", (cout,)))
    layer.set_weights(values)


def set_prelu(layer: keras.layers.PReLU, state: StateDict, key: str) -> None:
    """PyTorch `nn.PReLU(num_parameters=C)` weight `[C]` into a built PReLU with alpha `[1, 1, C]`."""
    shape = tuple(int(d) for d in layer.alpha.shape)
    layer.set_weights([state.take(key, (shape[-1],)).reshape(shape)])


def pixel_shuffle_scale(channels: int, in_ch: int) -> tuple[int, int] | None:
    """`(scale, out_ch)` with `scale**2 * out_ch == channels`, trying `out_ch` = in_ch, 3, 4, 1 in turn.

    A pixel-shuffle conv's width alone cannot tell 12 channels as x2 RGB from x1 with 12 outputs;
    like spandrel, assume the output has the input's channels if possible, else 3, 4 or 1.
    """
    for out_ch in dict.fromkeys((in_ch, 3, 4, 1)):
        if channels % out_ch == 0:
            scale = int(round(np.sqrt(channels // out_ch)))
            if scale * scale * out_ch == channels:
                return scale, out_ch
    return None


def set_dense(layer: keras.layers.Dense, state: StateDict, prefix: str) -> None:
    """PyTorch `nn.Linear` `prefix.weight` `[out, in]` (and `prefix.bias` `[out]`) into a built Dense `[in, out]`."""
    cin, cout = (int(d) for d in layer.kernel.shape)
    values = [state.take(f"{prefix}.weight", (cout, cin)).T]
    if layer.use_bias:
        values.append(state.take(f"{prefix}.bias", (cout,)))
    layer.set_weights(values)


def set_norm(layer: keras.layers.Layer, state: StateDict, prefix: str) -> None:
    """PyTorch `nn.LayerNorm` / `nn.BatchNorm2d`-style affine `prefix.weight` and `prefix.bias` `[C]` into a
    built Keras LayerNormalization (gamma, beta; its epsilon must be set to torch's 1e-5 by the model)."""
    gamma, beta = layer.gamma, layer.beta
    shape = tuple(int(d) for d in gamma.shape)
    layer.set_weights([state.take(f"{prefix}.weight", shape), state.take(f"{prefix}.bias", tuple(int(d) for d in beta.shape))])


def set_batch_norm(layer: keras.layers.BatchNormalization, state: StateDict, prefix: str) -> None:
    """PyTorch `nn.BatchNorm2d` `prefix.weight`, `.bias`, `.running_mean`, `.running_var` `[C]` into a built
    BatchNormalization (its epsilon must be torch's 1e-5); `num_batches_tracked` is marked used."""
    shape = tuple(int(d) for d in layer.gamma.shape)
    layer.set_weights([state.take(f"{prefix}.{name}", shape) for name in ("weight", "bias", "running_mean", "running_var")])
    state.skip(f"{prefix}.num_batches_tracked")


def set_depthwise_conv(layer: keras.layers.DepthwiseConv2D, state: StateDict, prefix: str) -> None:
    """A depthwise Conv2d (`groups=in`) `prefix.weight` `[in * m, 1, kh, kw]` (and bias) into a built
    DepthwiseConv2D with kernel `[kh, kw, in, m]` (torch output channel `c * m + k` is Keras `[..., c, k]`)."""
    kh, kw, cin, mult = (int(d) for d in layer.kernel.shape)
    weight = state.take(f"{prefix}.weight", (cin * mult, 1, kh, kw))
    values = [weight.reshape(cin, mult, kh, kw).transpose(2, 3, 0, 1)]
    if layer.use_bias:
        values.append(state.take(f"{prefix}.bias", (cin * mult,)))
    layer.set_weights(values)
