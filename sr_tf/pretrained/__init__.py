"""Published weights imported into our Keras models.

`sr_tf.pretrained.entries` (the catalogue as data) imports no TensorFlow; the converter and reader
are imported on first use, so `sr-tf models` and `--help` stay fast. Loading a catalogue model (and
its cached conversion) is the runtime's job: `sr_tf.runtime.load_generator(name)`.
"""

from __future__ import annotations

import importlib

from sr_tf.pretrained.entries import CATALOGUE, PretrainedModel

_LAZY = {
    "ncnn_files": "sr_tf.pretrained.locate",
    "model_from_ncnn": "sr_tf.pretrained.convert",
    "NcnnFormatError": "sr_tf.pretrained.ncnn",
    "load_ncnn": "sr_tf.pretrained.ncnn",
    "parse_param": "sr_tf.pretrained.ncnn",
    "read_weights": "sr_tf.pretrained.ncnn",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sr_tf.pretrained' has no attribute {name!r}")


__all__ = ["CATALOGUE", "PretrainedModel", *_LAZY]
