"""Where and in what precision a generator's forward pass runs: the one home of `--backend` / `--precision`.

`forward_fn(model, backend, precision)` turns a generator (`[N, H, W, 3] float32 in [0, 1]` ->
`[N, sH, sW, 3]`) into a function on NumPy arrays with the same contract, run by:

* `tf`: TensorFlow (oneDNN on x86 CPUs), a `tf.function` of the model;
* `openvino`: OpenVINO's runtime (`pip install 'sr-tf[openvino]'`), the same `tf.function` converted
  with `openvino.convert_model` and compiled for its CPU plugin.

`precision` is the dtype of the weights and of the arithmetic: `float32`, `float16` or `bfloat16`.
Inputs and outputs stay float32 whatever the precision. `cast_model` builds the reduced-precision
Keras model (also what `sr-tf export --precision` saves); OpenVINO converts the float32 graph and
is told the precision through its `INFERENCE_PRECISION_HINT`. Whether a precision is fast depends
on the hardware: bfloat16 on CPUs with AVX512-BF16 or AMX, float16 on GPUs (on CPUs without
AVX512-FP16, TensorFlow's float16 convolutions are slow and OpenVINO refuses it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

# TensorFlow and Keras are imported where used, so that the CLI can offer these choices cheaply.
BACKENDS = ("tf", "openvino")
PRECISIONS = ("float32", "float16", "bfloat16")
_OPENVINO_PRECISION = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}


def cpu_flags() -> set[str]:
    """The CPU's feature flags as /proc/cpuinfo lists them (`avx2`, `avx512_bf16`, `amx_bf16`, ...);
    empty where that file cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            return set(next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), []))
    except OSError:
        return set()


def cpu_has_bf16() -> bool:
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX), where oneDNN's bfloat16
    convolutions are faster than float32 (elsewhere they are emulated, and slower). A
    `ONEDNN_MAX_CPU_ISA` below bfloat16 (e.g. `AVX2`, `AVX512_CORE`) counts as no."""
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", "")).upper()
    if limit not in ("", "ALL", "DEFAULT") and not any(t in limit for t in ("BF16", "FP16", "AMX", "AVX10")):
        return False
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def check_choice(backend: str = "tf", precision: str = "float32") -> None:
    """Raises ValueError naming the bad value when `backend` or `precision` is unknown."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}. Received: backend={backend!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}. Received: precision={precision!r}")


def cast_model(model: keras.Model, precision: str) -> keras.Model:
    """The same generator with its weights and arithmetic in `precision`; outputs stay float32.

    The architecture is rebuilt from `get_config()` under a Keras dtype policy of `precision` (so
    every layer, nested ones included, holds `precision` variables and computes in it) and the
    weights are copied over, rounded to `precision`. A float32 request returns `model` itself.
    """
    import keras
    import tensorflow as tf

    check_choice(precision=precision)
    if precision == "float32" and all(w.dtype == "float32" for w in model.weights):
        return model
    config = {k: v for k, v in model.get_config().items() if k != "dtype"}
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        clone = model.__class__.from_config(config)
        clone(np.zeros((1, 8, 8, 3), np.float32))  # builds the weights
    finally:
        keras.config.set_dtype_policy(previous)
    if len(clone.weights) != len(model.weights):
        raise ValueError(f"Cannot rebuild {model.name!r} from its config: {len(clone.weights)} weights, "
                         f"expected {len(model.weights)}.")
    for target, source in zip(clone.weights, model.weights, strict=True):
        target.assign(tf.cast(source.value, target.dtype))
    return clone


def forward_fn(model: keras.Model, backend: str = "tf", precision: str = "float32"
               ) -> Callable[[np.ndarray], np.ndarray]:
    """`[N, H, W, 3] float32 -> [N, sH, sW, 3] float32` NumPy function running `model` as asked.

    Raises:
      ValueError: unknown backend or precision, or one the backend cannot run here.
      ImportError: `openvino` asked for but not installed.
    """
    import tensorflow as tf

    check_choice(backend, precision)
    if backend == "openvino":
        return _openvino_forward(model, precision)
    from sr_tf.models.layers import elementwise_form

    cast = cast_model(model, precision)
    fn = tf.function(
        lambda x: tf.cast(cast(x, training=False), tf.float32),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
    )
    def run(batch: np.ndarray) -> np.ndarray:
        with elementwise_form("xla"):  # traced on first use: elementwise chains as XLA kernels, convs oneDNN's
            return fn(tf.constant(batch, tf.float32)).numpy()

    return run


def _openvino_forward(model: keras.Model, precision: str) -> Callable[[np.ndarray], np.ndarray]:
    import tensorflow as tf

    try:
        import openvino as ov
    except ImportError as err:
        raise ImportError("`backend` openvino needs OpenVINO: pip install 'sr-tf[openvino]'") from err
    fn = tf.function(
        lambda x: tf.cast(model(x, training=False), tf.float32),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
    )
    from sr_tf.models.layers import elementwise_form

    with elementwise_form("openvino"):  # the patterns its converter fuses
        converted = ov.convert_model(fn)
    compiled = ov.Core().compile_model(
        converted, "CPU",
        # LATENCY: one request uses every core, as TensorFlow's one call does.
        {"INFERENCE_PRECISION_HINT": _OPENVINO_PRECISION[precision], "PERFORMANCE_HINT": "LATENCY"},
    )
    got = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    if got != _OPENVINO_PRECISION[precision]:
        # The CPU plugin silently falls back (e.g. to f32) for a precision the CPU cannot compute.
        raise ValueError(f"OpenVINO cannot run {precision} on this CPU (it would run {got}); "
                         "use float32, or bfloat16 on CPUs with AVX512-BF16/AMX.")
    request = compiled.create_infer_request()

    def run(batch: np.ndarray) -> np.ndarray:
        out = request.infer({0: np.ascontiguousarray(batch, np.float32)})[0]
        return np.array(out, np.float32)  # a copy: the request reuses its output buffer

    return run
