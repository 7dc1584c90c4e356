import keras
import numpy as np
import pytest
import tensorflow as tf


def make_pairs(n=4, hr_size=32, scale=2, seed=0):
    """Smooth random HR patches and their 2x box-downscaled LR, float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    hr = np.clip(np.cumsum(rng.normal(0, 0.08, (n, hr_size, hr_size, 3)), axis=2) + 0.5, 0, 1).astype(np.float32)
    lr = hr.reshape(n, hr_size // scale, scale, hr_size // scale, scale, 3).mean(axis=(2, 4))
    return lr.astype(np.float32), hr


@pytest.fixture
def pairs():
    return make_pairs()


@pytest.fixture
def dataset(pairs):
    return tf.data.Dataset.from_tensor_slices(pairs).batch(2)


@pytest.fixture(autouse=True)
def _float32_policy():
    keras.mixed_precision.set_dtype_policy("float32")
    yield
    keras.mixed_precision.set_dtype_policy("float32")
