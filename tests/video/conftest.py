"""Fixtures: tiny x4 models saved as .keras files (a random one, and one that is exactly nearest-neighbour)."""

from __future__ import annotations

import numpy as np
import pytest
from video_helpers import SCALE

from sr_tf.models import SRVGGNetCompact


def _model(zero: bool, seed: int = 3):
    import keras

    keras.utils.set_random_seed(seed)
    model = SRVGGNetCompact(num_feat=8, num_conv=1, upscale=SCALE)
    model(np.zeros((1, 4, 4, 3), np.float32))
    if zero:  # every conv outputs 0, leaving the nearest-upsampled input
        model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    return model


@pytest.fixture(scope="session")
def random_model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "random_x4.keras"
    _model(zero=False).save(path)
    return str(path)


@pytest.fixture(scope="session")
def nearest_model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "nearest_x4.keras"
    _model(zero=True).save(path)
    return str(path)
