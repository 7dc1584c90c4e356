"""The `--backend` / `--precision` options shared by the verbs that run a model (see `sr_tf.backends`)."""

from __future__ import annotations

import argparse

from sr_tf.backends import BACKENDS, PRECISIONS


def add_arguments(p: argparse.ArgumentParser, backend: bool = True) -> None:
    if backend:
        p.add_argument("--backend", choices=BACKENDS, default="tf",
                       help="runtime of the model: TensorFlow, or OpenVINO's CPU runtime "
                            "(pip install 'sr-tf[openvino]') (default: %(default)s)")
    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="dtype of the weights and arithmetic; inputs and outputs are unchanged. bfloat16 is "
                        "fast on CPUs with AVX512-BF16/AMX, float16 on GPUs (default: %(default)s)")
