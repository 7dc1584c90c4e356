"""Training: the `SRModel` / `SRGAN` keras.Models, recipes, callbacks and the one `fit` path.

    from sr_tf.training import load_config, train
    result = train(load_config("srresnet_small", ["data.path=photos", "data.val_split=3"]), "runs/small")

Modules: `models` (train_step/test_step, serialisable), `configs` (typed recipes, TOML/YAML/CLI
overrides; no TensorFlow), `builders` (config -> compiled model, LR and loss-weight schedules),
`callbacks` (checkpoints, best model, time limit, signals, TensorBoard), `distribute` (strategy
choice, per-replica datasets, the chief worker), `run` (`train` behind `sr-tf train`, and `retrain`).

Names are imported on first use, so reading a recipe (`sr_tf.training.configs`) does not import
TensorFlow: `sr-tf train --set wrong_key=1` answers at once.
"""

import importlib

_EXPORTS = {
    "RECIPES": "configs",
    "TrainConfig": "configs",
    "load_config": "configs",
    "recipe": "configs",
    "build_model": "builders",
    "SRGAN": "models",
    "SRModel": "models",
    "TrainResult": "run",
    "retrain": "run",
    "train": "run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sr_tf.training' has no attribute {name!r}")
    return getattr(importlib.import_module(f"sr_tf.training.{_EXPORTS[name]}"), name)
