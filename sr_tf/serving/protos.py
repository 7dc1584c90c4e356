"""TF Serving's config messages for the serving layer: they live in `sr_tf.tfserving_protos`, a floor
down, because `sr_tf.export` writes one of them too (a SavedModel's `batching_params.pbtxt`)."""

from sr_tf.tfserving_protos import message_class, parse_text

__all__ = ["message_class", "parse_text"]
