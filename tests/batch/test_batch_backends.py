"""batch-predict's --backend / --precision: .keras and catalogue models only; SavedModels run as exported."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from batch_helpers import assert_upscaled_equal, random_image, reference_upscale

from sr_tf.batch import BatchConfig
from sr_tf.batch.predictor import load_predictor


def test_a_savedmodel_refuses_another_precision_or_backend(savedmodel):
    for backend, precision in (("tf", "bfloat16"), ("openvino", "float32")):
        with pytest.raises(ValueError, match="precision it was exported with"):
            load_predictor(str(savedmodel), backend=backend, precision=precision)


def test_config_names_an_unknown_precision():
    with pytest.raises(ValueError, match="'int8'"):
        BatchConfig(model="m", input="i", output="o", precision="int8")


def test_reduced_precision_keras_model_is_close(tmp_path, tiny_model):
    tiny_model.save(tmp_path / "tiny.keras")
    pixels = random_image(2, (9, 11, 3))[None].astype(np.float32)
    got = load_predictor(str(tmp_path / "tiny.keras"), tile=0, precision="bfloat16")(pixels)
    diff = np.abs(got - reference_upscale(tiny_model, pixels))
    assert got.shape == (1, 18, 22, 3) and 0 < diff.max() <= 4


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino is not installed")
def test_openvino_predictor_gives_the_serving_numbers(tmp_path, tiny_model):
    tiny_model.save(tmp_path / "tiny.keras")
    pixels = random_image(3, (2, 10, 7, 3)).astype(np.float32)
    predictor = load_predictor(str(tmp_path / "tiny.keras"), tile=4, tile_pad=8, backend="openvino")  # blending: exact when pad >= 2x the reach
    assert_upscaled_equal(predictor(pixels), reference_upscale(tiny_model, pixels))
