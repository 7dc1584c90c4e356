"""Tiny images and models for the evaluation tests (no /work/shared, CPU only)."""

import numpy as np
import pytest
from eval_helpers import colourful
from PIL import Image


@pytest.fixture
def hr_folder(tmp_path):
    folder = tmp_path / "hr"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(colourful(32, 40, seed=i)).save(folder / f"img{i}.png")
    return folder


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Two `.keras` files of the same tiny x2 SRVGGNetCompact architecture with different weights."""
    import keras

    from sr_tf.models import SRVGGNetCompact

    folder = tmp_path_factory.mktemp("models")
    paths = []
    for seed in (1, 2):
        keras.utils.set_random_seed(seed)
        model = SRVGGNetCompact(num_feat=8, num_conv=1, upscale=2)
        model(np.zeros((1, 16, 16, 3), np.float32))
        path = folder / f"tiny{seed}.keras"
        model.save(path)
        paths.append(path)
    return paths
