"""Training recipes as typed dataclass configs with named factories.

`recipe(name)` returns a fresh `TrainConfig` for a published recipe; `load_config(name_or_file)`
also reads a TOML or YAML file (`base = "srresnet"` picks the recipe to start from, tables override
fields: `[optim] g_lr = 2e-4`, `[generator.kwargs] num_block = 4`); `apply_overrides(config,
["optim.g_lr=1e-4", ...])` applies `KEY=VALUE` strings from the command line (values parsed as
TOML: numbers, booleans, strings, arrays). Unknown keys are errors, never ignored.

Step counts are those of the papers / BasicSR option files; shrink `total_steps` for short runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sr_tf.config import (  # noqa: F401  (re-exported: part of this module's API)
    CONFIG_SUFFIXES,
    ConfigBase,
    apply_overrides,
    merge,
    parse_override,
    read_config_file,
)


@dataclass
class NetConfig(ConfigBase):
    """An architecture from `sr_tf.models.GENERATORS` / `DISCRIMINATORS` and its constructor kwargs."""

    name: str = "srresnet"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class LossConfig(ConfigBase):
    """Loss weights. A weight is a float or `{boundaries = [...], values = [...]}` (piecewise by step)."""

    pixel_loss: str = "l1"  # l1 | mse | charbonnier
    pixel_weight: float | dict = 1.0
    perceptual_weight: float | dict = 0.0
    perceptual_layers: dict[str, float] = field(default_factory=lambda: {"conv5_4": 1.0})
    perceptual_criterion: str = "l1"  # l1 | mse
    vgg_weights: str | None = "imagenet"
    gan_type: str = "vanilla"  # vanilla | relativistic
    gan_weight: float | dict = 0.0
    tv_weight: float | dict = 0.0


@dataclass
class OptimConfig(ConfigBase):
    """Adam for G (and D). `lr_schedule`: constant | multistep (x gamma at milestones) | cosine_restart."""

    g_lr: float = 1e-4
    d_lr: float = 1e-4
    beta_1: float = 0.9
    beta_2: float = 0.99
    lr_schedule: str = "constant"
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.5
    cosine_period: int = 250_000
    eta_min: float = 1e-7


@dataclass
class DataConfig(ConfigBase):
    """The training data of a run: where the images are and how patches are made from them.

    The field names are those of `sr_tf.data.DatasetConfig`, which `sr_tf.training.run.dataset_configs`
    makes from this (one for training, one for validation); recipes leave `path` unset and
    `sr-tf train --data` (or the caller of `train`) fills it.

    Attributes:
      path: a folder of HR images, a `make-tfrecords` folder, or a TFDS name (local or gs://).
      source: "folder", "tfrecord" or "tfds".
      scale: super-resolution factor (LR side = HR side / scale).
      patch_size: HR patch side in pixels (LR patches are `patch_size / scale`).
      batch_size: global batch of HR patches.
      degradation: "bicubic" or "realesrgan" (see `DatasetConfig.degradation`).
      crop_candidates: each patch is the most detailed of this many random crops (1: plain random).
      val_path: a folder of HR validation images.
      val_split: validate on the last N images (by name) of a `path` folder instead of training on them.
      hr_downscale: downscale every HR image, training and validation alike, by this integer
        factor first (antialiased MATLAB bicubic, as `sr-tf evaluate --hr-downscale`).
      cache_decoded: folders only: decode once and hold the images in memory (None: when they
        take less than `sr_tf.training.run.MEMORY_BUDGET`).
    """

    path: str | None = None
    source: str = "folder"
    scale: int = 4
    patch_size: int = 128
    batch_size: int = 16
    degradation: str = "bicubic"  # bicubic | realesrgan
    crop_candidates: int = 1
    val_path: str | None = None
    val_split: int = 0
    hr_downscale: int = 1
    cache_decoded: bool | None = None


# Keys of configs written before the training data had one config (`config.json` of older runs).
LEGACY_KEYS = {"hr_patch_size": "patch_size", "in_memory": "cache_decoded"}


@dataclass
class TrainConfig(ConfigBase):
    """A training run. Steps are optimizer steps (one batch each).

    `model.fit` runs in Keras epochs of `steps_per_epoch` steps: metrics, TensorBoard scalars and
    the progress line are per epoch, and validation, checkpoints and the `--max-minutes` stop
    happen at epoch ends, so `val_every` and `checkpoint_every` are multiples of it.
    `steps_per_execution` steps run in one `tf.function` call (divides `steps_per_epoch`).
    """

    name: str = "srresnet"
    generator: NetConfig = field(default_factory=NetConfig)
    discriminator: NetConfig | None = None
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    total_steps: int = 1_000_000
    steps_per_epoch: int = 100
    steps_per_execution: int = 1
    val_every: int = 5000
    checkpoint_every: int = 5000
    keep_checkpoints: int = 3
    ema_decay: float | None = None
    mixed_precision: str | None = None  # None | auto | mixed_float16 | mixed_bfloat16 (auto: see distribute)
    jit_compile: bool = False  # XLA; slower for these convolutions on the CPUs measured so far
    early_stopping_patience: int | None = None  # validations without PSNR improvement
    seed: int = 0

    def check(self) -> None:
        """Raises ValueError naming the first inconsistent setting."""
        for name in ("total_steps", "steps_per_epoch", "steps_per_execution", "val_every", "checkpoint_every",
                     "keep_checkpoints"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")
        if self.steps_per_epoch % self.steps_per_execution:
            raise ValueError(f"steps_per_execution must divide steps_per_epoch. Received: steps_per_execution="
                             f"{self.steps_per_execution}, steps_per_epoch={self.steps_per_epoch}")
        for name in ("val_every", "checkpoint_every"):
            if getattr(self, name) % self.steps_per_epoch:
                raise ValueError(f"{name} must be a multiple of steps_per_epoch ({self.steps_per_epoch}): validation "
                                 f"and checkpoints happen at epoch ends. Received: {name}={getattr(self, name)}")
        if self.total_steps % self.steps_per_execution:
            raise ValueError(f"total_steps must be a multiple of steps_per_execution. Received: total_steps="
                             f"{self.total_steps}, steps_per_execution={self.steps_per_execution}")


# --------------------------------------------------------------------------- recipes


def srcnn() -> TrainConfig:
    """SRCNN (Dong et al.): MSE, x3 bicubic-upsampled input, Adam 1e-4 (SGD in the paper)."""
    return TrainConfig(
        name="srcnn",
        generator=NetConfig("srcnn", {"scale": 3}),
        loss=LossConfig(pixel_loss="mse"),
        optim=OptimConfig(g_lr=1e-4),
        data=DataConfig(scale=3, patch_size=33, batch_size=128),
    )


def srresnet() -> TrainConfig:
    """SRResNet (Ledig et al.): MSE, Adam 1e-4, 96px HR patches, batch 16, 1e6 steps."""
    return TrainConfig(
        name="srresnet",
        generator=NetConfig("srresnet", {"scale": 4, "num_block": 16}),
        loss=LossConfig(pixel_loss="mse"),
        optim=OptimConfig(g_lr=1e-4, beta_2=0.999),
        data=DataConfig(scale=4, patch_size=96, batch_size=16),
    )


def srresnet_small() -> TrainConfig:
    """A small SRResNet for short CPU runs: 32 channels, 8 blocks, BasicSR's MSRResNet changes (no BN,
    residual over the bicubic-upsampled input), L1, Adam 1e-3 with cosine decay over 3000 steps,
    patches drawn as the most detailed of 4 random crops, and `mixed_precision="auto"` (bfloat16 on
    CPUs that compute it natively, about twice the steps per minute; float32 elsewhere).

    On the 12 photos of `shared/data/photos` (9 train, 3 validate, HR downscaled by 2) it passes
    bicubic within a few hundred steps; the paper's SRResNet (BN, no input skip) is still far below
    bicubic after a thousand steps. Tuned on those photos only; held-out figures in the README.
    """
    return TrainConfig(
        name="srresnet_small",
        generator=NetConfig(
            "srresnet", {"scale": 4, "num_feat": 32, "num_block": 8, "batch_norm": False, "input_skip": "bicubic"}
        ),
        loss=LossConfig(pixel_loss="l1"),
        optim=OptimConfig(g_lr=1e-3, lr_schedule="cosine_restart", cosine_period=3000, eta_min=1e-6),
        data=DataConfig(scale=4, patch_size=96, batch_size=16, crop_candidates=4),
        total_steps=3000,
        val_every=500,
        checkpoint_every=500,
        mixed_precision="auto",
    )


def srgan() -> TrainConfig:
    """SRGAN: from SRResNet, VGG54 (post-ReLU, MSE) + 1e-3 adversarial, 1e5 steps at 1e-4 then 1e-5."""
    cfg = srresnet()
    cfg.name = "srgan"
    cfg.discriminator = NetConfig(
        "vgg_style", {"input_size": 96, "num_stages": 4, "dense_units": 1024, "strided_kernel_size": 3}
    )
    cfg.loss = LossConfig(
        pixel_loss="mse", pixel_weight=0.0, perceptual_weight=1.0 / 12.75**2,
        perceptual_layers={"relu5_4": 1.0}, perceptual_criterion="mse", gan_weight=1e-3,
    )
    cfg.optim = OptimConfig(g_lr=1e-4, d_lr=1e-4, beta_2=0.999, lr_schedule="multistep", milestones=[100_000], gamma=0.1)
    cfg.total_steps = 200_000
    return cfg


def esrgan_stage1() -> TrainConfig:
    """ESRGAN stage 1 (RRDB PSNR): L1, Adam 2e-4, cosine annealing with restarts, 128px patches."""
    return TrainConfig(
        name="esrgan_stage1",
        generator=NetConfig("rrdbnet", {"scale": 4, "num_block": 23}),
        loss=LossConfig(pixel_loss="l1"),
        optim=OptimConfig(g_lr=2e-4, lr_schedule="cosine_restart", cosine_period=250_000, eta_min=1e-7),
        data=DataConfig(scale=4, patch_size=128, batch_size=16),
        total_steps=1_000_000,
    )


def esrgan_stage2() -> TrainConfig:
    """ESRGAN stage 2 (from stage 1): conv5_4 perceptual 1, RaGAN 5e-3, L1 1e-2, lr 1e-4 halved."""
    cfg = esrgan_stage1()
    cfg.name = "esrgan_stage2"
    cfg.discriminator = NetConfig("vgg_style", {"input_size": 128, "num_stages": 5, "dense_units": 100})
    cfg.loss = LossConfig(
        pixel_loss="l1", pixel_weight=1e-2, perceptual_weight=1.0, perceptual_layers={"conv5_4": 1.0},
        gan_type="relativistic", gan_weight=5e-3,
    )
    cfg.optim = OptimConfig(
        g_lr=1e-4, d_lr=1e-4, lr_schedule="multistep", milestones=[50_000, 100_000, 200_000, 300_000], gamma=0.5
    )
    cfg.total_steps = 400_000
    return cfg


def perpix() -> TrainConfig:
    """"Per-Pix": MSE and VGG terms with step-scheduled weights w1/w2, adversarial 1e-3.

    Steps 0-15k: w1=10, w2=1; 15k-20k: 10, 10; then 1, 10.
    """
    cfg = srgan()
    cfg.name = "perpix"
    cfg.loss = LossConfig(
        pixel_loss="mse",
        pixel_weight={"boundaries": [15_000, 20_000], "values": [10.0, 10.0, 1.0]},
        perceptual_weight={"boundaries": [15_000, 20_000], "values": [1.0, 10.0, 10.0]},
        perceptual_layers={"relu5_4": 1.0}, perceptual_criterion="mse", gan_weight=1e-3,
    )
    return cfg


def realesrgan() -> TrainConfig:
    """Real-ESRGAN: RRDB + U-Net SN discriminator, L1 1 + multi-layer perceptual 1 + GAN 0.1, EMA."""
    cfg = esrgan_stage1()
    cfg.name = "realesrgan"
    cfg.discriminator = NetConfig("unet_sn", {"num_feat": 64})
    cfg.loss = LossConfig(
        pixel_loss="l1", pixel_weight=1.0, perceptual_weight=1.0,
        perceptual_layers={"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0},
        gan_type="vanilla", gan_weight=0.1,
    )
    cfg.optim = OptimConfig(g_lr=1e-4, d_lr=1e-4, lr_schedule="multistep", milestones=[400_000], gamma=0.5)
    cfg.data = DataConfig(scale=4, patch_size=256, batch_size=12, degradation="realesrgan")
    cfg.ema_decay = 0.999
    cfg.total_steps = 400_000
    return cfg


RECIPES = {
    "srcnn": srcnn,
    "srresnet": srresnet,
    "srresnet_small": srresnet_small,
    "srgan": srgan,
    "esrgan_stage1": esrgan_stage1,
    "esrgan_stage2": esrgan_stage2,
    "perpix": perpix,
    "realesrgan": realesrgan,
}


def recipe(name: str) -> TrainConfig:
    """A fresh config of a named recipe (see `RECIPES`)."""
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe; expected one of {sorted(RECIPES)}. Received: name={name!r}")
    return RECIPES[name]()


# --------------------------------------------------------------------------- overrides


def load_config(name_or_path: str, overrides: list[str] | None = None) -> TrainConfig:
    """A recipe name or a TOML / YAML file (with optional `base = "<recipe>"`), then `overrides`."""
    path = Path(name_or_path)
    if name_or_path in RECIPES:
        config = recipe(name_or_path)
    elif path.suffix in CONFIG_SUFFIXES and path.is_file():
        data = read_config_file(path)
        base = data.pop("base", None)
        config = recipe(base) if base is not None else TrainConfig()
        config = merge(config, data)
    else:
        raise ValueError(
            f"`config` must be a recipe name ({', '.join(sorted(RECIPES))}) or an existing "
            f"{' / '.join(CONFIG_SUFFIXES)} file. Received: {name_or_path!r}"
        )
    return apply_overrides(config, overrides or [])


def to_dict(config: TrainConfig) -> dict[str, Any]:
    return config.to_dict()


def from_dict(data: dict[str, Any]) -> TrainConfig:
    """A `TrainConfig` from `to_dict`'s output (e.g. a run's `config.json`), older runs' data keys renamed."""
    section = data.get("data")
    if isinstance(section, dict) and any(k in section for k in LEGACY_KEYS):
        data = {**data, "data": {LEGACY_KEYS.get(k, k): v for k, v in section.items()}}
    return merge(TrainConfig(discriminator=None), data)
