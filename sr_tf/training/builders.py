"""From a `TrainConfig` to compiled `SRModel` / `SRGAN` objects (schedules, optimizers, nets)."""

from __future__ import annotations

import keras

from sr_tf.losses import VGGFeatureExtractor
from sr_tf.models import DISCRIMINATORS, GENERATORS
from sr_tf.training.configs import LossConfig, NetConfig, OptimConfig, TrainConfig
from sr_tf.training.models import SRGAN, SRModel


def learning_rate(optim: OptimConfig, base_lr: float):
    """A float or a `keras.optimizers.schedules.LearningRateSchedule` of the optimizer step."""
    if optim.lr_schedule == "constant":
        return base_lr
    if optim.lr_schedule == "multistep":
        if not optim.milestones:
            return base_lr
        values = [base_lr * optim.gamma**i for i in range(len(optim.milestones) + 1)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(list(optim.milestones), values)
    if optim.lr_schedule == "cosine_restart":
        return keras.optimizers.schedules.CosineDecayRestarts(
            base_lr, optim.cosine_period, t_mul=1.0, m_mul=1.0, alpha=optim.eta_min / base_lr
        )
    raise ValueError(
        "optim.lr_schedule must be 'constant', 'multistep' or 'cosine_restart'. "
        f"Received: lr_schedule={optim.lr_schedule!r}"
    )


def loss_weight(value: float | dict, name: str):
    """A float, or `{boundaries, values}` -> `PiecewiseConstantDecay` (a callable of the step)."""
    if isinstance(value, dict):
        if set(value) != {"boundaries", "values"} or len(value["values"]) != len(value["boundaries"]) + 1:
            raise ValueError(
                f"A scheduled weight is {{boundaries = [...], values = [...]}} with one more value than "
                f"boundaries. Received: {name}={value!r}"
            )
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            [int(b) for b in value["boundaries"]], [float(v) for v in value["values"]]
        )
    return float(value)


def build_net(net: NetConfig, registry: dict, kind: str) -> keras.Model:
    if net.name not in registry:
        raise ValueError(f"Unknown {kind}; expected one of {sorted(registry)}. Received: name={net.name!r}")
    return registry[net.name](**net.kwargs)


def build_generator(config: TrainConfig) -> keras.Model:
    return build_net(config.generator, GENERATORS, "generator")


def _needs_vgg(loss: LossConfig) -> bool:
    return isinstance(loss.perceptual_weight, dict) or float(loss.perceptual_weight) != 0.0


def build_model(config: TrainConfig, *, generator: keras.Model | None = None) -> SRModel:
    """Builds and compiles the trainer for `config` (call inside `strategy.scope()`)."""
    generator = generator if generator is not None else build_generator(config)
    loss = config.loss
    feature_extractor = (
        VGGFeatureExtractor(taps=tuple(loss.perceptual_layers), weights=loss.vgg_weights) if _needs_vgg(loss) else None
    )
    common = {
        "feature_extractor": feature_extractor,
        "ema_decay": config.ema_decay,
        "crop_border": config.data.scale,
    }
    opt = config.optim
    g_opt = keras.optimizers.Adam(learning_rate(opt, opt.g_lr), beta_1=opt.beta_1, beta_2=opt.beta_2)
    content = {
        "pixel_loss": loss.pixel_loss,
        "pixel_weight": loss_weight(loss.pixel_weight, "loss.pixel_weight"),
        "perceptual_weight": loss_weight(loss.perceptual_weight, "loss.perceptual_weight"),
        "perceptual_layers": loss.perceptual_layers,
        "perceptual_criterion": loss.perceptual_criterion,
        "tv_weight": loss_weight(loss.tv_weight, "loss.tv_weight"),
    }
    content["steps_per_execution"] = config.steps_per_execution
    content["jit_compile"] = config.jit_compile
    if config.discriminator is None:
        model = SRModel(generator, **common)
        model.compile(g_opt, **content)
        return model
    discriminator = build_net(config.discriminator, DISCRIMINATORS, "discriminator")
    d_opt = keras.optimizers.Adam(learning_rate(opt, opt.d_lr), beta_1=opt.beta_1, beta_2=opt.beta_2)
    model = SRGAN(generator, discriminator, **common)
    model.compile(
        g_opt, d_opt, gan_type=loss.gan_type, gan_weight=loss_weight(loss.gan_weight, "loss.gan_weight"), **content
    )
    return model
