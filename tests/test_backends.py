"""Backends and precisions: every path computes what the float32 TensorFlow model computes."""

from __future__ import annotations

import importlib.util

import keras
import numpy as np
import pytest

from sr_tf.backends import cast_model, check_choice, forward_fn
from sr_tf.inference import Upscaler
from sr_tf.models import ResizedGenerator, RRDBNet, SRVGGNetCompact

HAS_OPENVINO = importlib.util.find_spec("openvino") is not None
needs_openvino = pytest.mark.skipif(not HAS_OPENVINO, reason="openvino is not installed (pip install 'sr-tf[openvino]')")

# Largest |difference| from float32 on [0, 1] outputs of the tiny models: bfloat16 keeps 8 bits of
# mantissa (~0.4% relative), float16 11 bits.
TOLERANCE = {"float32": 1e-5, "float16": 4e-3, "bfloat16": 3e-2}


def _tiny(kind: str):
    keras.utils.set_random_seed(7)
    if kind == "srvgg":
        model = SRVGGNetCompact(num_feat=8, num_conv=2, upscale=4)
    elif kind == "rrdb":
        model = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, scale=4)
    else:
        model = ResizedGenerator(SRVGGNetCompact(num_feat=8, num_conv=1, upscale=4), scale=3)
    model(np.zeros((1, 8, 8, 3), np.float32))
    return model


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).random((1, 12, 10, 3), dtype=np.float32)


@pytest.mark.parametrize("kind", ["srvgg", "rrdb", "resized"])
@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_cast_model_holds_and_computes_in_the_precision(kind, precision, image):
    model = _tiny(kind)
    cast = cast_model(model, precision)
    assert cast is not model and model.weights[0].dtype == "float32"  # the original is untouched
    assert {w.dtype for w in cast.weights} == {precision}
    reference = model(image).numpy()
    out = cast(image)
    assert out.dtype == "float32" and out.shape == reference.shape
    diff = np.abs(out.numpy() - reference).max()
    # not float32 arithmetic in disguise, and not wrong either
    assert 1e-6 < diff < TOLERANCE[precision], diff


def test_float32_is_the_model_itself(image):
    model = _tiny("srvgg")
    assert cast_model(model, "float32") is model
    np.testing.assert_array_equal(forward_fn(model)(image), model(image).numpy())


@pytest.mark.parametrize("backend,precision", [("onnx", "float32"), ("tf", "int8"), ("tf", "half")])
def test_unknown_choices_are_named(backend, precision):
    bad = backend if backend != "tf" else precision
    with pytest.raises(ValueError, match=repr(bad)):
        check_choice(backend, precision)


def test_upscaler_runs_in_the_precision(image):
    model = _tiny("rrdb")
    f32 = Upscaler(model)(image[0], tile=6, tile_pad=4)
    bf16 = Upscaler(model, precision="bfloat16")(image[0], tile=6, tile_pad=4)
    assert 1e-6 < np.abs(bf16 - f32).max() < TOLERANCE["bfloat16"]


@needs_openvino
@pytest.mark.parametrize("kind", ["srvgg", "rrdb", "resized"])
def test_openvino_float32_matches_tensorflow(kind, image):
    model = _tiny(kind)
    np.testing.assert_allclose(forward_fn(model, "openvino")(image), model(image).numpy(), atol=1e-5)


@needs_openvino
def test_openvino_reduced_precision_runs_or_says_why(image):
    model = _tiny("srvgg")
    reference = model(image).numpy()
    for precision in ("bfloat16", "float16"):
        try:
            out = forward_fn(model, "openvino", precision)(image)
        except ValueError as err:  # this CPU cannot compute it: a clear refusal, never a silent fallback
            assert precision in str(err) and "this CPU" in str(err)
            continue
        assert np.abs(out - reference).max() < TOLERANCE[precision]


def test_openvino_missing_is_a_clear_error(monkeypatch, image):
    import sys

    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now raises ImportError
    with pytest.raises(ImportError, match=r"sr-tf\[openvino\]"):
        forward_fn(_tiny("srvgg"), "openvino")


def test_evaluate_config_checks_the_choice():
    from sr_tf.evaluation.workflow import EvaluateConfig

    with pytest.raises(ValueError, match="'int8'"):
        EvaluateConfig(data=("photos",), out="report", precision="int8")
