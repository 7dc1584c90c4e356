"""Building our Keras models from parsed ncnn graphs of published architectures.

The importer recognises the architecture from the graph (layer types and
counts), derives the constructor arguments, checks the graph against what
that architecture would produce, and copies the weights in layer order:

* ncnn kernels `[out, in, kh, kw]` become Keras kernels `[kh, kw, in, out]`;
* the conv before a PyTorch-order PixelShuffle has its output channels
  permuted to TensorFlow's `depth_to_space` order;
* a trailing bicubic `Interp` becomes a `ResizedGenerator`.
"""

from __future__ import annotations

import numpy as np

from sr_tf.models import RRDBNet, SRVGGNetCompact, torch_to_tf_shuffle_permutation
from sr_tf.models.resized import ResizedGenerator
from sr_tf.pretrained.ncnn import NcnnFormatError, NcnnLayer

LEAKY_RELU = 2  # ncnn Convolution activation_type


def _kernel(layer: NcnnLayer) -> np.ndarray:
    return layer.weights[0].transpose(2, 3, 1, 0)


def _set_conv(keras_conv, layer: NcnnLayer, out_perm=None) -> None:
    kernel = _kernel(layer)
    bias = layer.weights[1] if len(layer.weights) > 1 else np.zeros(kernel.shape[-1], np.float32)
    if out_perm is not None:
        kernel, bias = kernel[..., out_perm], bias[out_perm]
    expected = [tuple(v.shape) for v in keras_conv.get_weights()]
    if expected != [kernel.shape, bias.shape]:
        raise NcnnFormatError(f"layer {layer.name}: weights {kernel.shape}/{bias.shape} do not fit the model's {expected}.")
    keras_conv.set_weights([kernel, bias])


def _of_type(layers: list[NcnnLayer], kind: str) -> list[NcnnLayer]:
    return [layer for layer in layers if layer.type == kind]


def _trailing_resize(layers: list[NcnnLayer], native: int, source: str) -> int | None:
    """Final scale if the graph ends in a bicubic Interp, else None."""
    last = layers[-1]
    if last.type != "Interp":
        return None
    if int(last.param(0, 0)) != 3 or last.param(3, 0) or last.param(4, 0):
        raise NcnnFormatError(f"{source}: the final Interp must be a bicubic resize by a scale factor.")
    factor_h, factor_w = float(last.param(1, 1.0)), float(last.param(2, 1.0))
    final = native * factor_h
    if factor_h != factor_w or abs(final - round(final)) > 1e-6:
        raise NcnnFormatError(f"{source}: final Interp scales {factor_h}x{factor_w} give no integer overall scale.")
    return int(round(final))


def srvgg_from_ncnn(layers: list[NcnnLayer], source: str = "<ncnn>"):
    """SRVGGNetCompact (optionally wrapped in a ResizedGenerator) with the graph's weights."""
    convs, prelus = _of_type(layers, "Convolution"), _of_type(layers, "PReLU")
    shuffles = _of_type(layers, "PixelShuffle")
    if len(shuffles) != 1 or len(convs) < 2:
        raise NcnnFormatError(f"{source}: not an SRVGGNetCompact graph (needs one PixelShuffle and >= 2 convs).")
    upscale = int(shuffles[0].param(0, 1))
    mode = int(shuffles[0].param(1, 0))
    num_feat, num_in = int(convs[0].param(0)), convs[0].weights[0].shape[1]
    num_out = int(convs[-1].param(0)) // (upscale * upscale)
    if prelus and len(prelus) != len(convs) - 1:
        raise NcnnFormatError(f"{source}: expected one PReLU per body conv ({len(convs) - 1}), found {len(prelus)}.")
    act_type = "prelu" if prelus else "leakyrelu" if int(convs[0].param(9, 0)) == LEAKY_RELU else "relu"
    model = SRVGGNetCompact(num_in, num_out, num_feat, len(convs) - 2, upscale, act_type)
    model(np.zeros((1, 4, 4, num_in), np.float32))
    for conv, layer in zip(model.convs, convs[:-1], strict=True):
        _set_conv(conv, layer)
    perm = torch_to_tf_shuffle_permutation(num_out, upscale) if mode == 0 else None
    _set_conv(model.conv_last, convs[-1], out_perm=perm)
    for act, prelu in zip(model.acts if prelus else [], prelus, strict=True):
        act.set_weights([prelu.weights[0].reshape(1, 1, -1)])
    final = _trailing_resize(layers, upscale, source)
    if final is None:
        return model
    wrapped = ResizedGenerator(model, scale=final)
    wrapped(np.zeros((1, 4, 4, num_in), np.float32))
    return wrapped


def rrdbnet_from_ncnn(layers: list[NcnnLayer], source: str = "<ncnn>") -> RRDBNet:
    """RRDBNet (x4 layout: two nearest x2 upsamplings) with the graph's weights."""
    convs = _of_type(layers, "Convolution")
    nearest = [layer for layer in _of_type(layers, "Interp") if int(layer.param(0, 0)) == 1]
    if (len(convs) - 6) % 15 or len(convs) < 21:
        raise NcnnFormatError(f"{source}: not an RRDBNet graph: expected 15*blocks + 6 convs, found {len(convs)}.")
    num_block = (len(convs) - 6) // 15
    num_feat, num_grow = int(convs[0].param(0)), int(convs[1].param(0))
    in_ch, num_out = convs[0].weights[0].shape[1], int(convs[-1].param(0))
    if len(nearest) != 2 or any(float(n.param(1, 0)) != 2.0 for n in nearest):
        raise NcnnFormatError(f"{source}: an RRDBNet graph has two nearest x2 upsamplings; found {len(nearest)}.")
    if in_ch != num_out:
        raise NcnnFormatError(
            f"{source}: first conv takes {in_ch} channels for {num_out} output channels; pixel-unshuffled "
            "(x2/x1) RRDBNet graphs are not supported by the importer."
        )
    scale, num_in = 4, in_ch
    for layer in convs[1:-5]:
        grows = int(layer.param(0)) == num_grow
        if grows and (int(layer.param(9, 0)) != LEAKY_RELU or layer.param(10) != [0.2]):
            raise NcnnFormatError(f"{source}: dense-block conv {layer.name} lacks the fused LeakyReLU(0.2).")
    model = RRDBNet(num_in, num_out, num_feat, num_block, num_grow, scale)
    model(np.zeros((1, 4, 4, num_in), np.float32))
    keras_convs = [model.conv_first]
    for rrdb in model.body:
        for rdb in rrdb.rdbs:
            keras_convs += [*rdb.convs, rdb.conv5]
    keras_convs += [model.conv_body, *model.conv_ups, model.conv_hr, model.conv_last]
    for conv, layer in zip(keras_convs, convs, strict=True):
        _set_conv(conv, layer)
    return model


def model_from_ncnn(layers: list[NcnnLayer], source: str = "<ncnn>"):
    """Recognises the architecture of an ncnn graph and returns our Keras model with its weights."""
    types = {layer.type for layer in layers}
    if "PixelShuffle" in types:
        return srvgg_from_ncnn(layers, source)
    if "Concat" in types and "Eltwise" in types:
        return rrdbnet_from_ncnn(layers, source)
    raise NcnnFormatError(
        f"{source}: architecture not recognised (supported: SRVGGNetCompact, RRDBNet). Layer types: {sorted(types)}"
    )
