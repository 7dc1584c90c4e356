"""`SRModel` (a generator trained on pixel/perceptual losses) and `SRGAN` (adds a discriminator).

Both are `keras.Model`s trained with `fit(dataset_of_(lr, hr))` and serialisable like any
Keras model (`model.save("run.keras")`, `keras.callbacks.ModelCheckpoint`, `BackupAndRestore`):

* data: `(lr [N, h, w, 3], hr [N, s*h, s*w, 3])` float32 in [0, 1];
* losses are computed per sample and scaled by the *global* batch
  (`tf.nn.compute_average_loss`), so gradients, which Keras optimizers sum over replicas,
  are the same on one device or many;
* loss weights are floats or `keras.optimizers.schedules.LearningRateSchedule`s of the step
  (e.g. `PiecewiseConstantDecay` for the Per-Pix recipe's scheduled weights);
* under a `mixed_float16` policy the optimizers are wrapped in `LossScaleOptimizer`;
* with `ema_decay` (0.999 in Real-ESRGAN) an exponential moving average of all generator
  weights is kept in `ema_generator`, used by `test_step` and for export;
* `test_step` reports `psnr_y` and `ssim_y` (Keras prefixes them `val_` during `fit`) on the
  Y channel with `crop_border` pixels removed (`sr_tf.metrics`), the paper convention;
* `model.optimizer` is the generator's optimizer (what `ReduceLROnPlateau` adjusts);
  `SRGAN.d_optimizer` is the discriminator's.

Build before `fit` (as `BackupAndRestore` requires) with the LR batch shape:
`model.build((None, h, w, 3))` creates every variable: nets, EMA copy, optimizer slots.

Saved state: generator, EMA generator, discriminator, optimizers and the step counter. The
VGG19 feature extractor is fixed (ImageNet) and rebuilt from its config, not saved.

Note: batch-norm statistics and the relativistic loss's batch means are per replica (as with
PyTorch DDP without SyncBatchNorm).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import keras
import tensorflow as tf

from sr_tf import losses as L
from sr_tf import metrics as M
from sr_tf.models import model_scale

Weight = float | Callable[[tf.Tensor], tf.Tensor]


def _weight_at(weight: Weight, step: tf.Tensor) -> tf.Tensor:
    """A loss weight (float or schedule of the step) as a float32 scalar."""
    value = weight(step) if callable(weight) else weight
    return tf.cast(value, tf.float32)


def _is_zero(weight: Weight) -> bool:
    return not callable(weight) and float(weight) == 0.0


def _serialize_weight(weight: Weight):
    return weight if not callable(weight) else keras.saving.serialize_keras_object(weight)


def _deserialize_weight(weight):
    return keras.saving.deserialize_keras_object(weight) if isinstance(weight, dict) else weight


def _maybe_loss_scale(optimizer: keras.optimizers.Optimizer, policy) -> keras.optimizers.Optimizer:
    if policy.name == "mixed_float16" and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def _inner(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """The optimizer a `LossScaleOptimizer` wraps (what the user chose), else itself."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def _logs(logs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Step logs as Keras can average them: under MultiWorkerMirroredStrategy Keras 3.15 reduces
    them with `strategy.reduce("MEAN", value, axis=0)`, which needs an axis, so scalars get one."""
    if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
        return {name: tf.reshape(value, [1]) for name, value in logs.items()}
    return logs


def clone_generator(generator: keras.Model) -> keras.Model:
    """A fresh model of the same class and config (weights not copied)."""
    return generator.__class__.from_config(generator.get_config())


def _nested(config: dict, key: str):
    value = config.get(key)
    return keras.saving.deserialize_keras_object(value) if isinstance(value, dict) else value


@keras.saving.register_keras_serializable(package="sr_tf")
class SRModel(keras.Model):
    """Trains a generator on pixel (+ optional perceptual and TV) losses.

    Args:
      generator: `[N, h, w, 3] -> [N, s*h, s*w, 3]` float32 model with a `scale` (or `upscale`)
        attribute.
      feature_extractor: a `sr_tf.losses.VGGFeatureExtractor` (needed when perceptual_weight != 0).
      ema_decay: None (no EMA) or e.g. 0.999.
      crop_border: pixels cropped for validation metrics (None: the generator's scale).
      compute_ssim: also report SSIM-Y in `test_step` (needs >= 11 pixels after cropping).
    """

    def __init__(
        self,
        generator: keras.Model,
        *,
        feature_extractor: keras.Model | None = None,
        ema_decay: float | None = None,
        crop_border: int | None = None,
        compute_ssim: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if ema_decay is not None and not 0.0 < float(ema_decay) < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1) or None. Received: ema_decay={ema_decay!r}")
        self.generator = generator
        self.scale = model_scale(generator)
        self.feature_extractor = feature_extractor
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.ema_generator = clone_generator(generator) if ema_decay is not None else None
        self.crop_border = self.scale if crop_border is None else int(crop_border)
        self.compute_ssim = bool(compute_ssim)
        self.step = self.add_weight(
            name="step", shape=(), dtype="int64", initializer="zeros", trainable=False,
            aggregation="only_first_replica",
        )
        self.val_psnr_tracker = keras.metrics.Mean(name="psnr_y")
        self.val_ssim_tracker = keras.metrics.Mean(name="ssim_y")
        # Every tracker exists from the start (Keras locks a model's state once built, and
        # `compile_from_config` runs after building); `compile` picks the active ones.
        names = ["g_loss", "pixel_loss", "perceptual_loss", "tv_loss", *self._extra_tracker_names()]
        self._loss_trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self._active_trackers: tuple[str, ...] = ()

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict:
        def ser(obj):
            return None if obj is None else keras.saving.serialize_keras_object(obj)

        return {
            "name": self.name,
            "trainable": self.trainable,
            "generator": ser(self.generator),
            "feature_extractor": ser(self.feature_extractor),
            "ema_decay": self.ema_decay,
            "crop_border": self.crop_border,
            "compute_ssim": self.compute_ssim,
        }

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        for key in ("generator", "feature_extractor"):
            config[key] = _nested(config, key)
        generator = config.pop("generator")
        return cls(generator, **config)

    # ------------------------------------------------------------------ setup
    def compile(
        self,
        g_optimizer: keras.optimizers.Optimizer | None = None,
        *,
        pixel_loss: str = "l1",
        pixel_weight: Weight = 1.0,
        perceptual_weight: Weight = 0.0,
        perceptual_layers: Mapping[str, float] | None = None,
        perceptual_criterion: str = "l1",
        tv_weight: Weight = 0.0,
        steps_per_execution: int = 1,
        jit_compile: bool = False,
        run_eagerly: bool = False,
    ):
        """Sets the optimizer and loss weights (floats or schedules of the step).

        `steps_per_execution` steps run inside one `tf.function` call (fewer Python round
        trips; callbacks see every N-th step). XLA (`jit_compile`) is off by default: it made
        these convolutions slower on CPUs (see the field notes); measure before enabling it.
        """
        if pixel_loss not in L.PIXEL_LOSSES:
            raise ValueError(f"Unknown pixel loss; expected one of {sorted(L.PIXEL_LOSSES)}. Received: pixel_loss={pixel_loss!r}")
        if not _is_zero(perceptual_weight) and self.feature_extractor is None:
            raise ValueError(
                "perceptual_weight is non-zero but the model has no feature_extractor. "
                f"Received: perceptual_weight={perceptual_weight!r}"
            )
        self.g_optimizer = _maybe_loss_scale(g_optimizer or keras.optimizers.Adam(1e-4), self.generator.dtype_policy)
        super().compile(
            optimizer=self.g_optimizer, steps_per_execution=steps_per_execution, jit_compile=jit_compile,
            run_eagerly=run_eagerly, auto_scale_loss=False,
        )
        self.pixel_loss_name = pixel_loss
        self.pixel_weight = pixel_weight
        self.perceptual_weight = perceptual_weight
        taps = getattr(self.feature_extractor, "taps", ("conv5_4",))
        self.perceptual_layers = dict(perceptual_layers or {t: 1.0 for t in taps})
        self.perceptual_criterion = perceptual_criterion
        self.tv_weight = tv_weight
        names = ["g_loss", "pixel_loss"]
        if not _is_zero(perceptual_weight):
            names.append("perceptual_loss")
        if not _is_zero(tv_weight):
            names.append("tv_loss")
        self._active_trackers = (*names, *self._extra_tracker_names())
        self._compile_args = {
            "pixel_loss": pixel_loss, "perceptual_layers": self.perceptual_layers,
            "perceptual_criterion": perceptual_criterion, "steps_per_execution": steps_per_execution,
            "jit_compile": bool(jit_compile),
        }
        if self.built:
            self._build_optimizers()

    def get_compile_config(self) -> dict | None:
        if not getattr(self, "_compile_args", None):
            return None
        weights = {name: _serialize_weight(getattr(self, name)) for name in self._weight_names()}
        optimizers = {name: keras.saving.serialize_keras_object(_inner(opt)) for name, opt in self._named_optimizers()}
        return {**self._compile_args, **weights, **optimizers}

    def compile_from_config(self, config: dict) -> None:
        config = dict(config)
        for name, _ in self._named_optimizers_spec():
            config[name] = keras.saving.deserialize_keras_object(config[name])
        for name in self._weight_names():
            config[name] = _deserialize_weight(config[name])
        self.compile(**config)

    def _weight_names(self) -> tuple[str, ...]:
        return ("pixel_weight", "perceptual_weight", "tv_weight")

    def _named_optimizers_spec(self) -> tuple[tuple[str, str], ...]:
        return (("g_optimizer", "generator"),)

    def _named_optimizers(self):
        return [(name, getattr(self, name)) for name, _ in self._named_optimizers_spec()]

    def _extra_tracker_names(self) -> list[str]:
        return []

    @property
    def _train_trackers(self) -> dict[str, keras.metrics.Mean]:
        return {n: self._loss_trackers[n] for n in self._active_trackers}

    @property
    def metrics(self):
        return [*self._train_trackers.values(), self.val_psnr_tracker, self.val_ssim_tracker]

    def build(self, input_shape):
        """Creates every variable (nets, EMA copy, optimizer slots) from the LR batch shape
        `[N, h, w, C]` (h, w may be None where the nets allow any size)."""
        _, h, w, c = input_shape
        hr_size = self._hr_input_size()
        if h is None or w is None:
            side = hr_size // self.scale if hr_size else 8
            h, w = h or side, w or side
        lr = tf.zeros([1, h, w, c], tf.float32)
        hr = tf.zeros([1, h * self.scale, w * self.scale, c], tf.float32)
        self.generator(lr)
        if self.ema_generator is not None:
            self.ema_generator(lr)
            self.ema_generator.set_weights(self.generator.get_weights())
        if self.feature_extractor is not None:
            self.feature_extractor(hr)
        self._build_extra(hr)
        if getattr(self, "_compile_args", None):
            self._build_optimizers()

    def _hr_input_size(self) -> int | None:
        return None

    def _build_extra(self, hr: tf.Tensor) -> None:
        pass

    def _build_optimizers(self) -> None:
        nets = dict(self._named_optimizers_spec())
        for name, optimizer in self._named_optimizers():
            if not optimizer.built:
                optimizer.build(getattr(self, nets[name]).trainable_variables)

    def call(self, inputs, training=None):
        return self.generator(inputs, training=training)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras pulls a batch and averages it over replicas to build unbuilt models symbolically;
        # `build()` already made every variable, and under MultiWorkerMirroredStrategy that
        # average fails on the per-replica batch (TF 2.21 / Keras 3.15), so skip it when built.
        if self.built and all(opt.built for _, opt in self._named_optimizers()):
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    # ------------------------------------------------------------------ losses
    def content_losses(self, sr: tf.Tensor, hr: tf.Tensor, step: tf.Tensor) -> dict[str, tf.Tensor]:
        """Per-sample `[N]` weighted content losses: pixel, perceptual, total variation."""
        out = {
            "pixel_loss": L.pixel_loss(
                self.pixel_loss_name, sr, hr, weight=_weight_at(self.pixel_weight, step), reduction="per_sample"
            )
        }
        if not _is_zero(self.perceptual_weight):
            out["perceptual_loss"] = L.perceptual_loss(
                self.feature_extractor(sr),
                self.feature_extractor(hr),
                self.perceptual_layers,
                criterion=self.perceptual_criterion,
                weight=_weight_at(self.perceptual_weight, step),
                reduction="per_sample",
            )
        if not _is_zero(self.tv_weight):
            out["tv_loss"] = L.total_variation_loss(sr, weight=_weight_at(self.tv_weight, step), reduction="per_sample")
        return out

    def _apply(self, optimizer, tape, loss, variables):
        grads = tape.gradient(loss, variables)
        optimizer.apply(grads, variables)

    def _track(self, values: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        for name, value in values.items():
            # The tracked value is the per-replica mean; Mean metrics aggregate over replicas.
            self._train_trackers[name].update_state(tf.reduce_mean(value))
        return _logs({name: t.result() for name, t in self._train_trackers.items()})

    def update_ema(self) -> None:
        """`ema = decay * ema + (1 - decay) * weights` over all generator weights (incl. BN stats)."""
        if self.ema_generator is None:
            return
        decay = self.ema_decay
        pairs = list(zip(self.ema_generator.weights, self.generator.weights, strict=True))

        def merge_fn(strategy, pairs):
            for ema_var, var in pairs:
                strategy.extended.update(
                    ema_var.value,
                    lambda e, x: e.assign(decay * e + (1.0 - decay) * tf.cast(x, e.dtype)),
                    args=(var.value,),
                )

        ctx = tf.distribute.get_replica_context()
        if ctx is None:  # cross-replica context
            merge_fn(tf.distribute.get_strategy(), pairs)
        else:
            ctx.merge_call(merge_fn, args=(pairs,))

    # ------------------------------------------------------------------ steps
    def generator_terms(self, sr: tf.Tensor, hr: tf.Tensor, step: tf.Tensor) -> dict[str, tf.Tensor]:
        """Per-sample `[N]` weighted terms of the generator loss (subclasses add theirs)."""
        return self.content_losses(sr, hr, step)

    def generator_step(self, lr: tf.Tensor, hr: tf.Tensor, step: tf.Tensor):
        """One G update (then EMA). Returns `(sr, per-sample G loss [N], terms)`."""
        with tf.GradientTape() as tape:
            sr = self.generator(lr, training=True)
            terms = self.generator_terms(sr, hr, step)
            per_sample = tf.add_n(list(terms.values()))
            loss = tf.nn.compute_average_loss(per_sample)
            scaled = self.g_optimizer.scale_loss(loss)
        self._apply(self.g_optimizer, tape, scaled, self.generator.trainable_variables)
        self.update_ema()
        return sr, per_sample, terms

    def train_step(self, data):
        lr, hr = data
        _, per_sample, terms = self.generator_step(lr, hr, self.step.value)
        self.step.assign_add(1)
        return self._track({"g_loss": per_sample, **terms})

    @property
    def eval_generator(self) -> keras.Model:
        """The EMA generator when there is one, else the generator."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def test_step(self, data):
        lr, hr = data
        sr = tf.clip_by_value(self.eval_generator(lr, training=False), 0.0, 1.0)
        hr = tf.cast(hr, tf.float32)
        self.val_psnr_tracker.update_state(M.psnr(sr, hr, crop_border=self.crop_border, y_channel=True))
        logs = {"psnr_y": self.val_psnr_tracker.result()}
        if self.compute_ssim:
            self.val_ssim_tracker.update_state(M.ssim(sr, hr, crop_border=self.crop_border, y_channel=True))
            logs["ssim_y"] = self.val_ssim_tracker.result()
        return _logs(logs)


@keras.saving.register_keras_serializable(package="sr_tf")
class SRGAN(SRModel):
    """Adversarial training: a generator step (content + adversarial losses), then a D step.

    The order follows BasicSR's ESRGAN/Real-ESRGAN models: G is updated with D's current
    weights, then D is updated on the same fakes (without gradient to G).

    Args (beyond `SRModel`):
      discriminator: `[N, H, W, 3] -> logits` (`VGGStyleDiscriminator` `[N, 1]` or
        `UNetDiscriminatorSN` `[N, H, W, 1]`).
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, **kwargs):
        super().__init__(generator, **kwargs)
        self.discriminator = discriminator

    def get_config(self) -> dict:
        return {**super().get_config(), "discriminator": keras.saving.serialize_keras_object(self.discriminator)}

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        for key in ("generator", "discriminator", "feature_extractor"):
            config[key] = _nested(config, key)
        return cls(config.pop("generator"), config.pop("discriminator"), **config)

    def compile(
        self,
        g_optimizer: keras.optimizers.Optimizer | None = None,
        d_optimizer: keras.optimizers.Optimizer | None = None,
        *,
        gan_type: str = "vanilla",
        gan_weight: Weight = 1e-3,
        **kwargs,
    ):
        """As `SRModel.compile`, plus the D optimizer, `gan_type` ("vanilla" | "relativistic") and
        `gan_weight` (the adversarial weight in the G loss)."""
        if gan_type not in L.GAN_TYPES:
            raise ValueError(f"Unknown gan_type; expected one of {L.GAN_TYPES}. Received: gan_type={gan_type!r}")
        self.d_optimizer = _maybe_loss_scale(
            d_optimizer or keras.optimizers.Adam(1e-4), self.discriminator.dtype_policy
        )
        self.gan_type = gan_type
        self.gan_weight = gan_weight
        super().compile(g_optimizer, **kwargs)
        self._compile_args["gan_type"] = gan_type

    def _weight_names(self):
        return (*super()._weight_names(), "gan_weight")

    def _named_optimizers_spec(self):
        return (("g_optimizer", "generator"), ("d_optimizer", "discriminator"))

    def _extra_tracker_names(self) -> list[str]:
        return ["gan_loss", "d_loss", "d_real", "d_fake"]

    def _hr_input_size(self) -> int | None:
        return getattr(self.discriminator, "input_size", None)

    def _build_extra(self, hr):
        self.discriminator(hr)

    def generator_terms(self, sr, hr, step):
        terms = super().generator_terms(sr, hr, step)
        fake_logits = self.discriminator(sr, training=True)
        real_logits = tf.stop_gradient(self.discriminator(hr, training=True))
        terms["gan_loss"] = L.generator_adversarial_loss(
            self.gan_type, real_logits, fake_logits, weight=_weight_at(self.gan_weight, step),
            reduction="per_sample",
        )
        return terms

    def train_step(self, data):
        lr, hr = data
        sr, g_per_sample, terms = self.generator_step(lr, hr, self.step.value)
        # Discriminator step on the same fakes, without a path to G.
        fake = tf.stop_gradient(sr)
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(hr, training=True)
            fake_logits = self.discriminator(fake, training=True)
            d_per_sample = L.discriminator_loss(self.gan_type, real_logits, fake_logits, reduction="per_sample")
            d_loss = tf.nn.compute_average_loss(d_per_sample)
            scaled = self.d_optimizer.scale_loss(d_loss)
        self._apply(self.d_optimizer, tape, scaled, self.discriminator.trainable_variables)
        self.step.assign_add(1)
        return self._track(
            {
                "g_loss": g_per_sample,
                **terms,
                "d_loss": d_per_sample,
                "d_real": L.reduce_loss(real_logits, "per_sample"),
                "d_fake": L.reduce_loss(fake_logits, "per_sample"),
            }
        )
