"""Training: the `SRModel` / `SRGAN` keras.Models, recipes, callbacks and the one `fit` path.

    from sr_tf.training import TrainData, load_config, train
    result = train(load_config("srresnet_small"), TrainData("photos", val_split=3), "runs/small")

Modules: `models` (train_step/test_step, serialisable), `configs` (typed recipes, TOML/YAML/CLI
overrides), `builders` (config -> compiled model, LR and loss-weight schedules), `callbacks`
(checkpoints, best model, time limit, signals, TensorBoard), `distribute` (strategy choice,
per-replica datasets, the chief worker), `run` (`train` behind `sr-tf train`, and `retrain`).
"""

from sr_tf.training.builders import build_model
from sr_tf.training.configs import RECIPES, TrainConfig, load_config, recipe
from sr_tf.training.models import SRGAN, SRModel
from sr_tf.training.run import TrainData, TrainResult, retrain, train

__all__ = [
    "RECIPES",
    "SRGAN",
    "SRModel",
    "TrainConfig",
    "TrainData",
    "TrainResult",
    "build_model",
    "load_config",
    "recipe",
    "retrain",
    "train",
]
