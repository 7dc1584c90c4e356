"""A servable: one loaded SavedModel version and its signatures, as TF Serving's predict path sees them."""

from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np

from sr_tf.runtime.savedmodels import load_savedmodel
from sr_tf.serving.codec import TensorInfo
from sr_tf.serving.errors import Code, ServingError, invalid

log = logging.getLogger("sr_tf.serving")

DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"


@dataclasses.dataclass
class Signature:
    """A callable signature; `defaults` are the SignatureDef's values for inputs a request may omit."""

    name: str
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]
    function: object
    defaults: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


def _tensor_info(proto) -> TensorInfo:
    import tensorflow as tf

    dtype = tf.dtypes.as_dtype(proto.dtype)
    np_dtype = np.dtype(object) if dtype == tf.string else np.dtype(dtype.as_numpy_dtype)
    shape = None
    if not proto.tensor_shape.unknown_rank:
        shape = tuple(None if d.size < 0 else int(d.size) for d in proto.tensor_shape.dim)
    return TensorInfo(np_dtype, shape)


class Servable:
    """One loaded version of a model: its SavedModel, signature defs and callable signatures.

    `batching` is the version's own batching (`sr_tf.serving.batching.model_batching`: its
    `batching_params.pbtxt` under `--enable_per_model_batching_parameters`), or None for the
    server-wide one; the manager sets it when it loads the version.
    """

    def __init__(self, name: str, version: int, path: str, tags: tuple[str, ...] = ("serve",),
                 batching=None):
        import tensorflow as tf
        from tensorflow.core.protobuf import saved_model_pb2

        self.name, self.version, self.path = name, int(version), path
        self.batching = batching  # a BatchingConfig, or None
        saved = saved_model_pb2.SavedModel()
        with tf.io.gfile.GFile(os.path.join(path, "saved_model.pb"), "rb") as f:
            saved.ParseFromString(f.read())
        graphs = [g for g in saved.meta_graphs if set(tags) <= set(g.meta_info_def.tags)]
        if not graphs:
            raise ValueError(f"No MetaGraph in {path} has the tags {sorted(tags)} (--saved_model_tags)")
        self.signature_defs = graphs[0].signature_def  # map<string, SignatureDef>
        self._loaded = load_savedmodel(path, tags)
        # (low, high) of a blend export's `strength` input (`sr_tf.export`), else None
        found = getattr(self._loaded, "strength_range", None)
        self.strength_range = tuple(float(v) for v in found.numpy()) if found is not None else None
        self.signatures: dict[str, Signature] = {}
        for key, fn in self._loaded.signatures.items():
            sd = self.signature_defs[key]
            self.signatures[key] = Signature(
                key,
                {k: _tensor_info(v) for k, v in sd.inputs.items()},
                {k: _tensor_info(v) for k, v in sd.outputs.items()},
                fn,
                {k: tf.make_ndarray(v) for k, v in sd.defaults.items()},
            )

    def signature(self, name: str, grpc: bool = False) -> Signature:
        """The named signature (default: serving_default). An unknown one is TF Serving's error:
        INVALID_ARGUMENT over REST (http_rest_api_handler.cc `GetInfoMap`), FAILED_PRECONDITION
        over gRPC (predict_util.cc `RunPredict`)."""
        key = name or DEFAULT_SIGNATURE
        sig = self.signatures.get(key)
        if sig is None:
            if grpc:
                raise ServingError(Code.FAILED_PRECONDITION, f'Serving signature key "{key}" not found.')
            raise invalid(f'Serving signature name: "{key}" not found in signature def')
        return sig

    def run(self, signature: Signature, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Calls a signature on numpy inputs; returns numpy outputs (strings as object arrays of bytes).
        An input left out takes the SignatureDef's default, as in TF Serving."""
        import tensorflow as tf

        inputs = {**signature.defaults, **inputs}
        try:
            outputs = signature.function(**{k: tf.constant(v) for k, v in inputs.items()})
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as err:
            raise invalid(first_line(err)) from None
        except tf.errors.OpError as err:
            raise ServingError(Code.INTERNAL, first_line(err)) from None
        return {k: v.numpy() for k, v in outputs.items()}

    def warm_up(self, iterations: int = 1) -> int:
        """Replays `assets.extra/tf_serving_warmup_requests` (predict logs), each `iterations`
        times (`--num_request_iterations_for_warmup`); returns how many requests there were."""
        import tensorflow as tf

        from sr_tf.export import read_warmup_requests

        requests = read_warmup_requests(self.path)[:1000]
        for request in requests:
            sig = self.signature(request.model_spec.signature_name)
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            for _ in range(max(1, iterations)):
                self.run(sig, inputs)
        return len(requests)


def first_line(err: Exception) -> str:
    """The reason an error gives, in one line. TensorFlow's graph errors start with "Graph
    execution error:" and a traceback of where the op was defined; the reason is the line before
    the trailing `[[{{node ...}}]]`, so that is the one a client sees."""
    text = (getattr(err, "message", None) or str(err)).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    if lines[0].startswith("Graph execution error"):
        reasons = [line for line in lines[1:] if not line.startswith(("[[", "Detected at node", "File \""))]
        if reasons:
            return reasons[-1]
    return lines[0]
