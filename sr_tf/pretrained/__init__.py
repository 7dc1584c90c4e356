"""Published weights imported into our Keras models."""

from sr_tf.pretrained.catalogue import (
    CATALOGUE,
    PretrainedModel,
    load_model,
    load_pretrained,
    ncnn_files,
)
from sr_tf.pretrained.convert import model_from_ncnn
from sr_tf.pretrained.ncnn import NcnnFormatError, load_ncnn, parse_param, read_weights

__all__ = [
    "CATALOGUE",
    "NcnnFormatError",
    "PretrainedModel",
    "load_model",
    "load_ncnn",
    "load_pretrained",
    "model_from_ncnn",
    "ncnn_files",
    "parse_param",
    "read_weights",
]
