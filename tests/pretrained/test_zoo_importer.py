"""The ncnn reader's new layer types, and graphs the zoo's importers must refuse."""

import struct

import numpy as np
import pytest

from sr_tf.pretrained import (
    NcnnFormatError,
    load_ncnn,
    model_from_ncnn,
    ncnn_files,
    parse_param,
    read_weights,
)

TAG_FP16 = struct.pack("<I", 0x01306B47)


def _fp32(values) -> bytes:
    return np.asarray(values, "<f4").tobytes()


def test_reader_lays_out_the_new_weight_layers():
    text = "\n".join([
        "7767517", "5 6",
        "MemoryData mean 0 1 m 0=1 1=1 2=3",
        "InnerProduct fc 1 1 a b 0=2 1=1 2=6",
        "Deconvolution up 1 1 b c 0=2 1=2 3=2 5=1 6=24",
        "Scale sc 1 1 c d 0=2 1=1",
        "Scale se 2 1 d m e 0=-233",
    ]) + "\n"
    fc = np.arange(6, dtype=np.float32)
    deconv = np.arange(24, dtype=np.float32) / 10
    data = b"".join([
        _fp32([0.1, 0.2, 0.3]),                       # MemoryData: raw, no tag
        b"\0\0\0\0" + _fp32(fc), _fp32([1, 2]),       # InnerProduct: tagged weights, raw bias
        TAG_FP16 + deconv.astype("<f2").tobytes(), _fp32([3, 4]),  # Deconvolution: fp16 weights, raw bias
        _fp32([5, 6]), _fp32([7, 8]),                 # Scale with its own data: scale, bias
    ])                                                # Scale from a second input: no weights
    layers = parse_param(text)
    read_weights(layers, data)
    mean, ip, up, scale, se = layers
    np.testing.assert_allclose(mean.weights[0], [0.1, 0.2, 0.3])
    assert ip.weights[0].shape == (2, 3) and ip.weights[1].tolist() == [1, 2]
    assert up.weights[0].shape == (2, 3, 2, 2)  # [out, in, kh, kw]
    np.testing.assert_allclose(up.weights[0].reshape(-1), deconv, atol=1e-3)
    assert [w.tolist() for w in scale.weights] == [[5, 6], [7, 8]] and se.weights == []


@pytest.mark.parametrize("line, message", [
    ("Convolution c 1 1 a b 0=4 1=3 6=72 7=2", "grouped convolution"),
    ("InnerProduct fc 1 1 a b 0=4 2=7", "does not fit 4 outputs"),
    ("Deconvolution d 1 1 a b 0=4 1=2 6=20", "does not fit out=4"),
    ("Softmax s 1 1 a b", "Softmax"),
])
def test_unsupported_or_inconsistent_layers_are_named(line, message):
    layers = parse_param(f"7767517\n1 2\n{line}\n")
    with pytest.raises(NcnnFormatError, match=message):
        read_weights(layers, b"\0" * 4096)


def _real_layers(name):
    try:
        param, weights = ncnn_files(name)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    return load_ncnn(str(param), str(weights))


def test_a_unet_graph_missing_a_layer_is_refused():
    layers = _real_layers("realcugan-x2-conservative")
    index = next(i for i, layer in enumerate(layers) if layer.type == "InnerProduct")
    with pytest.raises(NcnnFormatError, match=r"\d+ conv/deconv/dense layers, the recognised model \d+"):
        model_from_ncnn(layers[:index] + layers[index + 1 :], source="cut.param")


def test_a_span_graph_without_its_normalisation_is_refused():
    layers = _real_layers("spanx4-ch48")
    with pytest.raises(NcnnFormatError, match="MemoryData"):
        model_from_ncnn([layer for layer in layers if layer.type != "MemoryData"], source="nomean.param")


def test_padded_convs_in_a_unet_graph_are_refused():
    layers = _real_layers("waifu2x-upconv7-photo-x2")
    conv = next(layer for layer in layers if layer.type == "Convolution")
    conv.params[4] = 1
    with pytest.raises(NcnnFormatError, match="pad"):
        model_from_ncnn(layers, source="padded.param")
