"""The Keras DAT's own contract (the weights against spandrel are in tests/checkpoints/test_dat.py)."""

import keras
import numpy as np
import pytest

from sr_tf.models import DAT
from tests.model_checks import check_generator

TINY = dict(embed_dim=32, depth=(3,), num_heads=(2,), split_size=(2, 4), expansion_factor=2.0,
            resi_connection="3conv", upsampler="pixelshuffledirect", upscale=2)


@pytest.mark.large  # a fit step traces the whole transformer: ~20 s on CPU
def test_dat_keeps_the_generator_contract(tmp_path):
    check_generator(DAT(**TINY), 2, tmp_path, size=(7, 5))


def test_dat_runs_under_mixed_float16():
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = DAT(**TINY)
        y = model(np.random.default_rng(0).random((1, 9, 6, 3), dtype=np.float32))
        assert y.dtype == "float32" and np.isfinite(np.asarray(y)).all()
        assert model.conv_first.compute_dtype == "float16"
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


@pytest.mark.parametrize("kwargs,message", [
    (dict(upsampler="nearest"), "upsampler"),
    (dict(num_heads=(3,)), "num_heads"),
    (dict(split_size=(3, 4)), "split_size"),
    (dict(upscale=5), "scale"),
])
def test_bad_arguments_name_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DAT(**{**TINY, **kwargs})
