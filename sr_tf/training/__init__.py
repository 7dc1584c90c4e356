"""Training: the `SRModel` / `SRGAN` keras.Models, recipes, distribution and the resumable loop.

    from sr_tf.training import SRGAN, load_config, train
    config = load_config("esrgan_stage2", ["total_steps=1000"])

Modules: `models` (train_step/test_step), `configs` (typed recipes, TOML/CLI overrides),
`builders` (config -> compiled model, LR and loss-weight schedules), `distribute` (strategy
choice, per-replica datasets), `trainer` (checkpointed loop behind `sr-tf train`),
`interpolate` (ESRGAN network interpolation), `retrain` (fine-tuning with `fit`),
`folder_data` (small in-memory folder datasets), `summaries` (TensorBoard records).
"""

from sr_tf.training.builders import build_model
from sr_tf.training.configs import RECIPES, TrainConfig, load_config, recipe
from sr_tf.training.interpolate import interpolate_models
from sr_tf.training.models import SRGAN, SRModel
from sr_tf.training.retrain import retrain
from sr_tf.training.trainer import train

__all__ = [
    "RECIPES",
    "SRGAN",
    "SRModel",
    "TrainConfig",
    "build_model",
    "interpolate_models",
    "load_config",
    "recipe",
    "retrain",
    "train",
]
