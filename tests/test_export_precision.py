"""`sr-tf export --precision`: reduced-precision SavedModels in TF Serving's op set, same signatures."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

from sr_tf.cli import main
from sr_tf.export import ExportConfig, export_savedmodel
from sr_tf.models import RRDBNet

DTYPES = {"float16": tf.float16.as_datatype_enum, "bfloat16": tf.bfloat16.as_datatype_enum}


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(5)
    m = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, scale=4)
    m(np.zeros((1, 4, 4, 3), np.float32))
    return m


@pytest.fixture(scope="module")
def exports(tmp_path_factory, model):
    base = tmp_path_factory.mktemp("precision")
    config = {"tile_size": 8, "tile_pad": 4, "warmup_size": 8}
    return {p: export_savedmodel(model, base / p / "1", ExportConfig(precision=p, **config))
            for p in ("float32", "float16", "bfloat16")}


def _ops(version_dir) -> list:
    """Every node of the SavedModel's graph and of its function library, as NodeDefs."""
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((version_dir / "saved_model.pb").read_bytes())
    graph = proto.meta_graphs[0].graph_def
    nodes = list(graph.node)
    for function in graph.library.function:
        nodes.extend(function.node_def)
    return nodes


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_reduced_precision_export_uses_standard_ops_and_computes_in_it(exports, precision):
    nodes = _ops(exports[precision])
    unknown = sorted({n.op for n in nodes if op_def_registry.get(n.op) is None})
    assert not unknown, f"ops TF Serving would not know: {unknown}"
    assert not _xla_functions(exports[precision]), "XLA kernels: TF Serving refuses them by default"
    convs = [n for n in nodes if n.op == "Conv2D"]
    assert convs and all(n.attr["T"].type == DTYPES[precision] for n in convs)
    reader = tf.train.load_checkpoint(str(exports[precision] / "variables" / "variables"))
    kernels = {k: v for k, v in reader.get_variable_to_dtype_map().items() if "kernel" in k}
    assert kernels and set(kernels.values()) == {tf.as_dtype(precision)}


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_reduced_precision_serves_through_the_embedded_server(exports, precision):
    from sr_tf.serving.clients import RestClient
    from sr_tf.serving.models import ModelConfig
    from sr_tf.serving.server import ModelServer, ServerConfig

    pixels = np.random.default_rng(1).integers(0, 256, (1, 10, 12, 3)).astype(np.float32)
    f32 = tf.saved_model.load(str(exports["float32"])).signatures["serving_default"]
    want = f32(images=tf.constant(pixels))["upscaled"].numpy()
    config = ServerConfig(rest_port=0, grpc_port=None, poll_seconds=0)
    with ModelServer([ModelConfig("reduced", str(exports[precision].parent))], config) as server:
        got = RestClient(f"http://127.0.0.1:{server.rest_port}", "reduced").predict(pixels)
    assert got.shape == want.shape and np.array_equal(got, np.round(got))  # whole numbers in [0, 255]
    diff = np.abs(got - want)
    assert 0 < diff.max() <= (2 if precision == "float16" else 8), diff.max()


def test_cli_exports_the_precision(tmp_path, model, capsys):
    path = tmp_path / "m.keras"
    model.save(path)
    out = tmp_path / "base" / "m" / "1"
    assert main(["export", "--model", str(path), "--out", str(out), "--precision", "bfloat16", "--no-warmup"]) == 0
    assert "bfloat16" in capsys.readouterr().out
    assert any(n.op == "Conv2D" and n.attr["T"].type == DTYPES["bfloat16"] for n in _ops(out))


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision"):
        ExportConfig(precision="int8")


def _xla_functions(version_dir) -> list:
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((version_dir / "saved_model.pb").read_bytes())
    library = proto.meta_graphs[0].graph_def.library.function
    return [f.signature.name for f in library if f.attr["_XlaMustCompile"].b]


def test_exports_hold_no_xla_kernels_even_when_traced_in_the_xla_form(tmp_path):
    """TF Serving refuses XLA kernels unless started with --xla_cpu_compilation_enabled."""
    from sr_tf.models import SRVGGNetCompact
    from sr_tf.models.layers import elementwise_form

    keras.utils.set_random_seed(3)
    compact = SRVGGNetCompact(num_feat=8, num_conv=2, upscale=2)  # PReLU between its convs
    compact(np.zeros((1, 4, 4, 3), np.float32))
    with elementwise_form("xla"):
        path = export_savedmodel(compact, tmp_path / "c" / "1", ExportConfig(tile_size=0, warmup=False))
        bf16 = export_savedmodel(compact, tmp_path / "b" / "1",
                                 ExportConfig(tile_size=0, warmup=False, precision="bfloat16"))
    assert not _xla_functions(path) and not _xla_functions(bf16)
    # its PReLUs in the "onednn" form: depthwise products and Maximum (`conv_prelu_chain`)
    assert {"DepthwiseConv2dNative", "Maximum"} <= {node.op for node in _ops(bf16)}
