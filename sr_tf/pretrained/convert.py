"""Building our Keras models from parsed ncnn graphs of published architectures.

The importer recognises the architecture from the graph (layer types and
counts), derives the constructor arguments, checks the graph against what
that architecture would produce, and copies the weights in layer order:

* ncnn kernels `[out, in, kh, kw]` become Keras kernels `[kh, kw, in, out]`;
* the conv before a PyTorch-order PixelShuffle has its output channels
  permuted to TensorFlow's `depth_to_space` order;
* ncnn deconvolution kernels `[out, in, kh, kw]` become Keras `Conv2DTranspose` kernels
  `[kh, kw, out, in]` (both scatter without flipping), fully connected `[out, in]` become
  `Dense` kernels `[in, out]`;
* a trailing bicubic `Interp` becomes a `ResizedGenerator`.

Real-CUGAN's and waifu2x's programs pad the input and crop the output around these graphs;
our `UpCunet`, `CUNet` and `UpConv7` do that inside the model (see their modules). srmd-ncnn-vulkan
builds SRMD's degradation-map input channels and pads the image around its graph; our `SRMD` does both.
"""

from __future__ import annotations

import keras
import numpy as np

from sr_tf.models import (
    SPAN,
    SRMD,
    CUNet,
    RRDBNet,
    SRVGGNetCompact,
    UpConv7,
    UpCunet,
    torch_to_tf_shuffle_permutation,
)
from sr_tf.models.cunet import SEBlock, UNetConv
from sr_tf.models.resized import ResizedGenerator
from sr_tf.pretrained.ncnn import NcnnFormatError, NcnnLayer

LEAKY_RELU = 2  # ncnn Convolution activation_type


def _kernel(layer: NcnnLayer) -> np.ndarray:
    return layer.weights[0].transpose(2, 3, 1, 0)


def _keras_kernel(keras_layer, layer: NcnnLayer) -> np.ndarray:
    """The ncnn layer's weights in the layout of `keras_layer` (Conv2D, Conv2DTranspose or Dense)."""
    kinds = {keras.layers.Conv2DTranspose: "Deconvolution", keras.layers.Conv2D: "Convolution",
             keras.layers.Dense: "InnerProduct"}
    expected = next(kind for cls, kind in kinds.items() if isinstance(keras_layer, cls))
    if layer.type != expected:
        raise NcnnFormatError(f"layer {layer.name} is a {layer.type} where the model has a {expected}.")
    if layer.type == "Deconvolution":
        return layer.weights[0].transpose(2, 3, 0, 1)
    if layer.type == "InnerProduct":
        return layer.weights[0].T
    return _kernel(layer)


def _set_conv(keras_conv, layer: NcnnLayer, out_perm=None) -> None:
    """Copies a Convolution / Deconvolution / InnerProduct layer's weights (and bias, zero if absent)."""
    kernel = _keras_kernel(keras_conv, layer)
    outputs = kernel.shape[-2] if layer.type == "Deconvolution" else kernel.shape[-1]
    bias = layer.weights[1] if len(layer.weights) > 1 else np.zeros(outputs, np.float32)
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


SRMD_MAP_CHANNELS = {18: True, 19: False}  # image + kernel PCA (+ noise): input channels -> noise_free


def srmd_from_ncnn(layers: list[NcnnLayer], source: str = "<ncnn>") -> SRMD:
    """SRMD / SRMD-NF: convs with fused ReLU on the 18/19-channel degradation input, then a pixel shuffle."""
    convs, shuffles = _of_type(layers, "Convolution"), _of_type(layers, "PixelShuffle")
    if len(shuffles) != 1 or len(convs) < 2 or {layer.type for layer in layers} != {"Input", "Convolution", "PixelShuffle"}:
        raise NcnnFormatError(f"{source}: not an SRMD graph (Input, convolutions, one PixelShuffle).")
    in_channels = convs[0].weights[0].shape[1]
    if in_channels not in SRMD_MAP_CHANNELS:
        raise NcnnFormatError(f"{source}: an SRMD graph's first conv takes 18 or 19 channels, not {in_channels}.")
    for layer in convs:
        relu = int(layer.param(9, 0)) == 1
        if relu != (layer is not convs[-1]) or int(layer.param(1, 0)) != 3 or int(layer.param(4, 0)) != 1:
            raise NcnnFormatError(f"{source}: SRMD conv {layer.name} is not a padded 3x3 conv with ReLU "
                                  "(none on the last).")
    upscale = int(shuffles[0].param(0, 1))
    model = SRMD(upscale, int(convs[0].param(0)), len(convs), noise_free=SRMD_MAP_CHANNELS[in_channels])
    model(np.zeros((1, 4, 4, 3), np.float32))
    perm = torch_to_tf_shuffle_permutation(3, upscale) if int(shuffles[0].param(1, 0)) == 0 else None
    _copy_in_order([*model.convs, model.conv_last], convs, source, last_perm=perm)
    return model


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


def _weight_layers(layers: list[NcnnLayer]) -> list[NcnnLayer]:
    return [layer for layer in layers if layer.type in ("Convolution", "Deconvolution", "InnerProduct")]


def _copy_in_order(keras_layers: list, layers: list[NcnnLayer], source: str, last_perm=None) -> None:
    """Copies the graph's weight layers, in file (= forward) order, into `keras_layers`."""
    if len(keras_layers) != len(layers):
        raise NcnnFormatError(
            f"{source}: the graph has {len(layers)} conv/deconv/dense layers, the recognised model {len(keras_layers)}."
        )
    for i, (keras_layer, layer) in enumerate(zip(keras_layers, layers, strict=True)):
        _set_conv(keras_layer, layer, out_perm=last_perm if i == len(layers) - 1 else None)


def span_from_ncnn(layers: list[NcnnLayer], source: str = "<ncnn>") -> SPAN:
    """SPAN: input normalisation (MemoryData mean, optional scalar Mul), 22 convs, pixel shuffle."""
    convs, shuffles = _of_type(layers, "Convolution"), _of_type(layers, "PixelShuffle")
    means = _of_type(layers, "MemoryData")
    if len(convs) != 22 or len(shuffles) != 1 or len(means) != 1:
        raise NcnnFormatError(
            f"{source}: not a SPAN graph (needs 22 convs, one PixelShuffle and one MemoryData mean; "
            f"found {len(convs)}, {len(shuffles)}, {len(means)})."
        )
    binary = _of_type(layers, "BinaryOp")
    subs = [b for b in binary if int(b.param(0, 0)) == 1 and means[0].tops[0] in b.bottoms]
    if len(subs) != 1:
        raise NcnnFormatError(f"{source}: SPAN graph without the input mean subtraction.")
    muls = [b for b in binary if int(b.param(0, 0)) == 2 and int(b.param(1, 0)) == 1 and b.bottoms == subs[0].tops]
    normalised = (muls or subs)[0].tops
    if convs[0].bottoms != normalised:
        raise NcnnFormatError(f"{source}: SPAN's first conv must read the normalised input.")
    img_range = float(muls[0].param(2, 1.0)) if muls else 1.0
    upscale = int(shuffles[0].param(0, 1))
    num_out = int(convs[-1].param(0)) // (upscale * upscale)
    model = SPAN(convs[0].weights[0].shape[1], num_out, int(convs[0].param(0)), upscale, img_range,
                 tuple(float(str(v)) for v in means[0].weights[0]))  # float32's shortest decimal: 0.4488
    model(np.zeros((1, 4, 4, model.num_in_ch), np.float32))
    keras_convs = [model.conv_1]
    for block in model.blocks:
        keras_convs += [block.c1, block.c2, block.c3]
    keras_convs += [model.conv_2, model.conv_cat, model.conv_up]
    perm = torch_to_tf_shuffle_permutation(num_out, upscale) if int(shuffles[0].param(1, 0)) == 0 else None
    _copy_in_order(keras_convs, convs, source, last_perm=perm)
    return model


def _unet_layers(unet) -> list:
    """The Keras layers of a `UNet1` / `UNet2` holding weights, in forward order."""
    out = []
    for name in ("conv1", "conv1_down", "conv2", "conv2_down", "conv2_up", "conv3", "conv3_up", "conv4",
                 "conv4_up", "conv5", "conv_bottom"):
        layer = getattr(unet, name, None)
        if isinstance(layer, UNetConv):
            out += [layer.conv_a, layer.conv_b]
            if isinstance(layer.seblock, SEBlock):
                out += [layer.seblock.squeeze, layer.seblock.excite]
        elif layer is not None:
            out.append(layer)
    return out


def unet_from_ncnn(layers: list[NcnnLayer], source: str = "<ncnn>"):
    """waifu2x's `UpConv7` and `CUNet`, or Real-CUGAN's `UpCunet`, from a graph with transposed convs."""
    weights = _weight_layers(layers)
    types = {layer.type for layer in layers}
    if any(int(layer.param(4, 0)) for layer in _of_type(layers, "Convolution")):
        raise NcnnFormatError(f"{source}: a graph with transposed convs whose convs pad is not a waifu2x/Real-CUGAN network.")
    first = weights[0]
    num_in, num_feat = first.weights[0].shape[1], int(first.param(0))
    if "Crop" not in types:
        if [layer.type for layer in weights] != ["Convolution"] * 6 + ["Deconvolution"]:
            raise NcnnFormatError(f"{source}: not an UpConv7 graph (six convs and one transposed conv).")
        model = UpConv7(num_in, int(weights[-1].param(0)), num_feat)
        model(np.zeros((1, 4, 4, num_in), np.float32))
        _copy_in_order([*model.convs, model.conv_up], weights, source)
        return model
    se = "Pooling" in types
    shuffles = _of_type(layers, "PixelShuffle")
    bottoms = _of_type(layers, "Deconvolution")
    if "Scale" in types:  # waifu2x's Caffe-converted CUNet: Scale (SE) and Eltwise (sums)
        model = CUNet(num_in, int(weights[-1].param(0)), num_feat)
    elif shuffles:
        model = UpCunet(4, se, num_in, int(weights[-1].param(0)) // 4, num_feat)
    else:
        scale = 3 if any(int(layer.param(3, 1)) == 3 for layer in bottoms) else 2
        model = UpCunet(scale, se, num_in, int(weights[-1].param(0)), num_feat)
    model(np.zeros((1, 4, 4, num_in), np.float32))
    keras_layers = _unet_layers(model.unet1) + _unet_layers(model.unet2)
    perm = None
    if shuffles:
        keras_layers.append(model.conv_final)
        perm = torch_to_tf_shuffle_permutation(model.num_out_ch, 2) if int(shuffles[0].param(1, 0)) == 0 else None
    _copy_in_order(keras_layers, weights, source, last_perm=perm)
    return model


def model_from_ncnn(layers: list[NcnnLayer], source: str = "<ncnn>"):
    """Recognises the architecture of an ncnn graph and returns our Keras model with its weights."""
    types = {layer.type for layer in layers}
    if "Swish" in types:
        return span_from_ncnn(layers, source)
    if "Deconvolution" in types:
        return unet_from_ncnn(layers, source)
    if types == {"Input", "Convolution", "PixelShuffle"} and \
            _of_type(layers, "Convolution")[0].weights[0].shape[1] in SRMD_MAP_CHANNELS:
        return srmd_from_ncnn(layers, source)
    if "PixelShuffle" in types:
        return srvgg_from_ncnn(layers, source)
    if "Concat" in types and "Eltwise" in types:
        return rrdbnet_from_ncnn(layers, source)
    raise NcnnFormatError(
        f"{source}: architecture not recognised (supported: SRVGGNetCompact, RRDBNet, SPAN, UpCunet, CUNet, "
        f"UpConv7, SRMD). Layer types: {sorted(types)}"
    )
