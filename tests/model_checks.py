"""Checks every model must pass: shape, config round-trip, .keras round-trip, a fit step."""

from __future__ import annotations

import keras
import numpy as np


def assert_config_round_trip(model: keras.Model) -> None:
    config = model.get_config()
    clone = type(model).from_config(config)
    assert clone.get_config() == config


def assert_saved_model_round_trip(model: keras.Model, x: np.ndarray, tmp_path) -> None:
    before = np.asarray(model(x, training=False))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(np.asarray(loaded(x, training=False)), before)


def assert_fit_step_updates(model: keras.Model, x: np.ndarray, y: np.ndarray) -> None:
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = [not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True)]
    assert any(changed)


def check_generator(model: keras.Model, scale: int, tmp_path, size=(16, 13)) -> None:
    rng = np.random.default_rng(0)
    x = rng.random((2, *size, 3), dtype=np.float32)
    y = model(x)
    assert tuple(y.shape) == (2, size[0] * scale, size[1] * scale, 3)
    assert y.dtype == "float32"
    assert_config_round_trip(model)
    assert_saved_model_round_trip(model, x, tmp_path)
    assert_fit_step_updates(model, x, rng.random(tuple(y.shape), dtype=np.float32))
