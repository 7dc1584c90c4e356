import numpy as np
import pytest

from sr_tf.models import ResizedGenerator, RRDBNet, SRVGGNetCompact, model_scale
from sr_tf.pretrained import NcnnFormatError, load_ncnn, model_from_ncnn, parse_param, read_weights
from tests.pretrained.ncnn_writer import psnr, rrdbnet_graph, run_ncnn, srvgg_graph

ncnn = pytest.importorskip("ncnn")


def _image(h=12, w=10, seed=0):
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


@pytest.mark.parametrize(
    "final_resize, fp16, expected_scale",
    [(None, False, 4), (None, True, 4), (0.5, False, 2), (0.75, True, 3)],
)
def test_srvgg_import_matches_ncnn(tmp_path, final_resize, fp16, expected_scale):
    graph = srvgg_graph(np.random.default_rng(1), final_resize=final_resize, fp16=fp16)
    param, weights = graph.save(tmp_path / "m")
    model = model_from_ncnn(load_ncnn(param, weights))
    assert model_scale(model) == expected_scale
    assert isinstance(model, ResizedGenerator if final_resize else SRVGGNetCompact)
    image = _image()
    ours = model(image[None]).numpy()[0]
    ref = run_ncnn(param, weights, image)
    assert ours.shape == ref.shape == (12 * expected_scale, 10 * expected_scale, 3)
    assert psnr(ours, ref) >= 60


def test_rrdbnet_import_matches_ncnn(tmp_path):
    param, weights = rrdbnet_graph(np.random.default_rng(2)).save(tmp_path / "m")
    model = model_from_ncnn(load_ncnn(param, weights))
    assert isinstance(model, RRDBNet) and model.num_block == 1 and model.num_grow_ch == 4
    image = _image(9, 11)
    assert psnr(model(image[None]).numpy()[0], run_ncnn(param, weights, image)) >= 60


def test_parse_param_reads_arrays_and_counts():
    text = "7767517\n2 2\nInput in 0 1 data 0=0\nConvolution c 1 1 data out 0=8 1=3 6=216 -23310=2,0.5,1.5\n"
    layers = parse_param(text)
    assert [layer.type for layer in layers] == ["Input", "Convolution"]
    assert layers[1].params == {0: 8, 1: 3, 6: 216, 10: [0.5, 1.5]}


@pytest.mark.parametrize(
    "text, message",
    [
        ("not ncnn\n", "not an ncnn .param"),
        ("7767517\n3 1\nInput in 0 1 data\n", "header says 3 layers"),
        ("7767517\n1 1\nInput in 0 2 data\n", "blob counts"),
    ],
)
def test_bad_param_files_are_named(text, message):
    with pytest.raises(NcnnFormatError, match=message):
        parse_param(text, source="bad.param")


def test_truncated_and_oversized_bin_files(tmp_path):
    graph = srvgg_graph(np.random.default_rng(3), num_conv=0)
    param, weights = graph.save(tmp_path / "m")
    data = open(weights, "rb").read()
    layers = parse_param(open(param).read())
    with pytest.raises(NcnnFormatError, match="truncated"):
        read_weights(layers, data[:-10], source="m.bin")
    with pytest.raises(NcnnFormatError, match="left over"):
        read_weights(parse_param(open(param).read()), data + b"\0" * 8, source="m.bin")


def test_quantised_table_weights_are_decoded():
    table = np.linspace(-1, 1, 256).astype("<f4")
    index = np.array([0, 255, 128, 7], np.uint8)
    bias = np.arange(4, dtype="<f4")
    data = b"\1\0\0\0" + table.tobytes() + index.tobytes() + bias.tobytes()
    layers = parse_param("7767517\n1 2\nConvolution c 1 1 a b 0=4 1=1 5=1 6=4\n")
    read_weights(layers, data)
    np.testing.assert_array_equal(layers[0].weights[0].reshape(-1), table[index])
    np.testing.assert_array_equal(layers[0].weights[1], bias)


def test_unknown_architecture_is_refused(tmp_path):
    layers = parse_param("7767517\n2 2\nInput in 0 1 data\nReLU r 1 1 data output\n")
    with pytest.raises(NcnnFormatError, match="not recognised"):
        model_from_ncnn(layers)
