"""A zoo model retrains like the others: `--init-from NAME` and `retrain(load_pretrained(NAME), ...)`."""

import numpy as np
import pytest

from sr_tf.imageio import write_image
from sr_tf.models import SPAN
from sr_tf.training.models import SRModel
from sr_tf.training.run import init_generator_from


@pytest.fixture(scope="module")
def spanx4(tmp_path_factory):
    from sr_tf.pretrained import ncnn_files
    from sr_tf.runtime.catalogue import load_pretrained

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SR_TF_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        try:
            ncnn_files("spanx4-ch48")
        except FileNotFoundError as e:
            pytest.skip(str(e))
        return load_pretrained("spanx4-ch48")


def test_init_from_a_catalogue_name(spanx4, monkeypatch):
    from sr_tf.runtime import load_generator

    monkeypatch.setattr("sr_tf.runtime.catalogue.load_pretrained", lambda name: spanx4)
    model = SRModel(SPAN(feature_channels=48, upscale=4))
    model.generator(np.zeros((1, 4, 4, 3), np.float32))
    assert init_generator_from(model, load_generator("spanx4-ch48")) == spanx4.name
    x = np.random.default_rng(0).random((1, 8, 8, 3), dtype=np.float32)
    np.testing.assert_array_equal(model.generator(x).numpy(), spanx4(x).numpy())


def test_init_from_refuses_other_constructor_arguments(spanx4, monkeypatch):
    """SPAN's input normalisation is not a weight: same shapes, different model; say which arguments differ."""
    monkeypatch.setattr("sr_tf.runtime.catalogue.load_pretrained", lambda name: spanx4)
    model = SRModel(SPAN(feature_channels=48, upscale=4, img_range=1.0))
    model.generator(np.zeros((1, 4, 4, 3), np.float32))
    from sr_tf.runtime import load_generator

    with pytest.raises(ValueError, match="img_range=255.0"):
        init_generator_from(model, load_generator("spanx4-ch48"))


def test_retrain_a_pretrained_zoo_model(spanx4, tmp_path):
    from sr_tf.training.run import retrain

    rng = np.random.default_rng(0)
    for i in range(2):
        write_image(tmp_path / f"{i}.png", rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    before = [w.copy() for w in spanx4.get_weights()]
    result = retrain(spanx4, tmp_path, steps_per_epoch=1, patch_size=32, batch_size=2, verbose=0)
    losses = [v[0] for k, v in result.history.items() if k.endswith("loss")]
    assert losses and all(np.isfinite(losses))
    assert any(not np.array_equal(a, b) for a, b in zip(before, spanx4.get_weights(), strict=True))
