"""Losses for super-resolution training: pixel, perceptual (VGG19), adversarial, total variation.

Every loss is a pure function that computes an element-wise (or per-sample) error and hands it
to `reduce_loss`, the one place where weighting and reduction happen:

* `reduction="mean"`: a scalar, the mean over every element (BasicSR's default);
* `reduction="sum"`: a scalar, the sum;
* `reduction="per_sample"`: `[N]`, the mean over all axes but the first. Trainers use this with
  `tf.nn.compute_average_loss` so losses are scaled per *global* batch under a distribution
  strategy;
* `reduction="none"`: the unreduced error.

`weight` multiplies the result (a Python float or a scalar tensor, e.g. a scheduled weight).

Images are `[N, H, W, C] float32 in [0, 1]` unless stated; discriminator outputs are logits
(no sigmoid) of any shape `[N, ...]`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import keras
import tensorflow as tf

REDUCTIONS = ("mean", "sum", "per_sample", "none")

# keras.applications.vgg19.preprocess_input ("caffe" mode): BGR order, ImageNet mean on 0-255.
VGG_BGR_MEAN = (103.939, 116.779, 123.68)

# VGG19 convolution layers per block (block b has VGG19_BLOCKS[b-1] convs).
VGG19_BLOCKS = (2, 2, 4, 4, 4)


def reduce_loss(error: tf.Tensor, reduction: str = "mean", weight=1.0) -> tf.Tensor:
    """Weights and reduces an error tensor `[N, ...]` (see the module docstring)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"Unknown reduction; expected one of {REDUCTIONS}. Received: reduction={reduction!r}")
    error = tf.cast(error, tf.float32)
    if reduction == "mean":
        out = tf.reduce_mean(error)
    elif reduction == "sum":
        out = tf.reduce_sum(error)
    elif reduction == "per_sample":
        rank = error.shape.rank
        out = error if rank == 1 else tf.reduce_mean(error, axis=list(range(1, rank)))
    else:
        out = error
    return out * tf.cast(weight, tf.float32)


def _pair(pred, target):
    pred = tf.cast(pred, tf.float32)
    target = tf.cast(target, tf.float32)
    if pred.shape.rank is not None and target.shape.rank is not None and not pred.shape.is_compatible_with(
        target.shape
    ):
        raise ValueError(f"pred and target differ in shape. Received: pred.shape={pred.shape}, target.shape={target.shape}")
    return pred, target


def l1_loss(pred, target, *, weight=1.0, reduction: str = "mean") -> tf.Tensor:
    """Mean absolute error `|pred - target|`."""
    pred, target = _pair(pred, target)
    return reduce_loss(tf.abs(pred - target), reduction, weight)


def mse_loss(pred, target, *, weight=1.0, reduction: str = "mean") -> tf.Tensor:
    """Mean squared error `(pred - target)**2`."""
    pred, target = _pair(pred, target)
    return reduce_loss(tf.square(pred - target), reduction, weight)


def charbonnier_loss(pred, target, *, eps: float = 1e-12, weight=1.0, reduction: str = "mean") -> tf.Tensor:
    """Charbonnier (smooth L1) `sqrt((pred - target)**2 + eps)`, as BasicSR (eps=1e-12)."""
    pred, target = _pair(pred, target)
    return reduce_loss(tf.sqrt(tf.square(pred - target) + eps), reduction, weight)


PIXEL_LOSSES = {"l1": l1_loss, "mse": mse_loss, "charbonnier": charbonnier_loss}


def pixel_loss(name: str, pred, target, *, weight=1.0, reduction: str = "mean") -> tf.Tensor:
    """Dispatches to `l1_loss`, `mse_loss` or `charbonnier_loss` by name."""
    if name not in PIXEL_LOSSES:
        raise ValueError(f"Unknown pixel loss; expected one of {sorted(PIXEL_LOSSES)}. Received: name={name!r}")
    return PIXEL_LOSSES[name](pred, target, weight=weight, reduction=reduction)


def total_variation_loss(image, *, weight=1.0, reduction: str = "mean") -> tf.Tensor:
    """Anisotropic total variation: mean |vertical diffs| + mean |horizontal diffs|.

    `[N, H, W, C]` -> per `reduction`; with "per_sample" or "mean" the two directions are each
    averaged over their own element count and then added.
    """
    image = tf.cast(image, tf.float32)
    dh = tf.abs(image[:, 1:, :, :] - image[:, :-1, :, :])
    dw = tf.abs(image[:, :, 1:, :] - image[:, :, :-1, :])
    if reduction == "none":
        raise ValueError("total_variation_loss has no element-wise form. Received: reduction='none'")
    return reduce_loss(dh, reduction, weight) + reduce_loss(dw, reduction, weight)


# --------------------------------------------------------------------------- adversarial losses


def _bce_logits(logits, label: float) -> tf.Tensor:
    logits = tf.cast(logits, tf.float32)
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), label), logits=logits)


def gan_discriminator_loss(real_logits, fake_logits, *, weight=1.0, reduction: str = "mean") -> tf.Tensor:
    """Standard GAN D loss: `BCE(D(x_r), 1) + BCE(D(x_f), 0)`, i.e. `softplus(-r) + softplus(f)`.

    SRGAN / BasicSR "vanilla". Each term is reduced on its own, then the two are added.
    """
    return reduce_loss(_bce_logits(real_logits, 1.0), reduction, weight) + reduce_loss(
        _bce_logits(fake_logits, 0.0), reduction, weight
    )


def gan_generator_loss(fake_logits, *, weight=1.0, reduction: str = "mean") -> tf.Tensor:
    """Standard (non-saturating) GAN G loss: `BCE(D(G(z)), 1) = softplus(-f)`."""
    return reduce_loss(_bce_logits(fake_logits, 1.0), reduction, weight)


def _relativistic(real_logits, fake_logits):
    real_logits = tf.cast(real_logits, tf.float32)
    fake_logits = tf.cast(fake_logits, tf.float32)
    # Relativistic *average*: each logit is compared with the batch mean of the other kind.
    real_rel = real_logits - tf.reduce_mean(fake_logits, axis=0, keepdims=True)
    fake_rel = fake_logits - tf.reduce_mean(real_logits, axis=0, keepdims=True)
    return real_rel, fake_rel


def relativistic_discriminator_loss(real_logits, fake_logits, *, weight=1.0, reduction: str = "mean") -> tf.Tensor:
    """ESRGAN's RaGAN D loss, `(BCE(C(x_r) - E[C(x_f)], 1) + BCE(C(x_f) - E[C(x_r)], 0)) / 2`.

    The expectation is the mean over the batch axis (per replica under a strategy, as with
    PyTorch DDP). Pass `fake_logits` from detached (stop-gradient) fakes.
    """
    real_rel, fake_rel = _relativistic(real_logits, fake_logits)
    return 0.5 * (
        reduce_loss(_bce_logits(real_rel, 1.0), reduction, weight)
        + reduce_loss(_bce_logits(fake_rel, 0.0), reduction, weight)
    )


def relativistic_generator_loss(real_logits, fake_logits, *, weight=1.0, reduction: str = "mean") -> tf.Tensor:
    """ESRGAN's RaGAN G loss, `(BCE(C(x_r) - E[C(x_f)], 0) + BCE(C(x_f) - E[C(x_r)], 1)) / 2`.

    The generator gets gradients from both terms (through `fake_logits` in each); give
    `real_logits` without a gradient path to G (they come from real images).
    """
    real_rel, fake_rel = _relativistic(real_logits, fake_logits)
    return 0.5 * (
        reduce_loss(_bce_logits(real_rel, 0.0), reduction, weight)
        + reduce_loss(_bce_logits(fake_rel, 1.0), reduction, weight)
    )


GAN_TYPES = ("vanilla", "relativistic")


def discriminator_loss(gan_type: str, real_logits, fake_logits, *, weight=1.0, reduction: str = "mean"):
    """`gan_discriminator_loss` ("vanilla") or `relativistic_discriminator_loss` ("relativistic")."""
    if gan_type == "vanilla":
        return gan_discriminator_loss(real_logits, fake_logits, weight=weight, reduction=reduction)
    if gan_type == "relativistic":
        return relativistic_discriminator_loss(real_logits, fake_logits, weight=weight, reduction=reduction)
    raise ValueError(f"Unknown gan_type; expected one of {GAN_TYPES}. Received: gan_type={gan_type!r}")


def generator_adversarial_loss(gan_type: str, real_logits, fake_logits, *, weight=1.0, reduction: str = "mean"):
    """`gan_generator_loss` ("vanilla", ignores `real_logits`) or `relativistic_generator_loss`."""
    if gan_type == "vanilla":
        return gan_generator_loss(fake_logits, weight=weight, reduction=reduction)
    if gan_type == "relativistic":
        return relativistic_generator_loss(real_logits, fake_logits, weight=weight, reduction=reduction)
    raise ValueError(f"Unknown gan_type; expected one of {GAN_TYPES}. Received: gan_type={gan_type!r}")


# --------------------------------------------------------------------------- perceptual (VGG19)


def vgg_preprocess(images) -> tf.Tensor:
    """`[N, H, W, 3]` RGB in [0, 1] -> VGG19 input: BGR on 0-255 minus the ImageNet mean.

    The same as `keras.applications.vgg19.preprocess_input(images * 255)` ("caffe" mode).
    """
    images = tf.cast(images, tf.float32) * 255.0
    return images[..., ::-1] - tf.constant(VGG_BGR_MEAN, tf.float32)


def _parse_tap(name: str) -> tuple[str, int, int]:
    """'conv5_4' -> ('conv', 5, 4); 'relu2_2' -> ('relu', 2, 2) (BasicSR layer names)."""
    match = re.fullmatch(r"(conv|relu)([1-5])_([1-4])", str(name))
    kind, block, index = (match[1], int(match[2]), int(match[3])) if match else ("", 1, 0)
    if not kind or index > VGG19_BLOCKS[block - 1]:
        raise ValueError(
            "VGG19 taps are named 'convB_I' (before the ReLU) or 'reluB_I' (after it), e.g. 'conv5_4', "
            f"'relu2_2'. Received: {name!r}"
        )
    return kind, block, index


@dataclass
class _FrozenLayers:
    convs: list  # (suffix "B_I", keras.layers.Conv2D)
    pools: dict  # block -> keras.layers.MaxPooling2D


@keras.saving.register_keras_serializable(package="sr_tf")
class VGGFeatureExtractor(keras.Model):
    """VGG19 features before (`convB_I`) or after (`reluB_I`) the activation.

    `[N, H, W, 3] float32 RGB in [0, 1]` -> `{tap: [N, h, w, C] float32}`. Inputs are normalised
    with `vgg_preprocess`. The layers come from `keras.applications.VGG19(weights=weights)`; each
    conv's ReLU is applied separately so pre-activation taps exist (ESRGAN uses `conv5_4`;
    SRGAN's VGG54 is `relu5_4`, VGG22 `relu2_2`). Only the layers up to the deepest tap are
    kept. Frozen: no trainable weights, and its weights are not part of saved models or
    checkpoints (they are fixed by `weights` and rebuilt from the config; keeping 80 MB of
    ImageNet VGG19 in every training checkpoint would only cost disk).

    Args:
      taps: layer names. weights: "imagenet" (users) or None (tests, random init) or a file path.
    """

    def __init__(self, taps: Sequence[str] = ("conv5_4",), weights: str | None = "imagenet", **kwargs):
        super().__init__(**kwargs)
        if isinstance(taps, str) or not taps:
            raise ValueError(f"`taps` must be a non-empty list of layer names. Received: taps={taps!r}")
        parsed = [_parse_tap(t) for t in taps]
        self.taps = tuple(taps)
        self.weights_source = weights
        last = max((b, i) for _, b, i in parsed)
        vgg = keras.applications.VGG19(include_top=False, weights=weights, input_shape=(None, None, 3))
        # A plain holder (not a list or dict attribute) keeps the frozen layers out of Keras'
        # tracking, so saving the trainer does not save them.
        self._frozen = _FrozenLayers(convs=[], pools={})
        convs, pools = self._frozen.convs, self._frozen.pools
        for block in range(1, last[0] + 1):
            for index in range(1, VGG19_BLOCKS[block - 1] + 1):
                if (block, index) > last:
                    break
                src = vgg.get_layer(f"block{block}_conv{index}")
                conv = keras.layers.Conv2D(src.filters, src.kernel_size, padding="same", name=f"conv{block}_{index}")
                conv.build((None, None, None, src.kernel.shape[2]))
                conv.set_weights(src.get_weights())
                conv.trainable = False
                convs.append((f"{block}_{index}", conv))
            if block < last[0]:
                pools[block] = keras.layers.MaxPooling2D(2, name=f"pool{block}")
        self.trainable = False

    def call(self, images):
        x = vgg_preprocess(images)
        wanted = set(self.taps)
        out = {}
        for suffix, conv in self._frozen.convs:
            block = int(suffix.split("_")[0])
            x = conv(x)
            if f"conv{suffix}" in wanted:
                out[f"conv{suffix}"] = tf.cast(x, tf.float32)
            x = tf.nn.relu(x)
            if f"relu{suffix}" in wanted:
                out[f"relu{suffix}"] = tf.cast(x, tf.float32)
            is_last_in_block = int(suffix.split("_")[1]) == VGG19_BLOCKS[block - 1]
            if is_last_in_block and block in self._frozen.pools:
                x = self._frozen.pools[block](x)
        return out

    def get_config(self):
        return {**super().get_config(), "taps": list(self.taps), "weights": self.weights_source}


def perceptual_loss(
    sr_features: Mapping[str, tf.Tensor],
    hr_features: Mapping[str, tf.Tensor],
    layer_weights: Mapping[str, float],
    *,
    criterion: str = "l1",
    weight=1.0,
    reduction: str = "mean",
) -> tf.Tensor:
    """`weight * sum_l layer_weights[l] * criterion(sr_features[l], hr_features[l])`.

    Args:
      sr_features / hr_features: outputs of `VGGFeatureExtractor` (HR features without gradient).
      layer_weights: tap -> weight (ESRGAN `{"conv5_4": 1}`; Real-ESRGAN conv1_2..conv5_4 with
        0.1, 0.1, 1, 1, 1).
      criterion: "l1" (ESRGAN, Real-ESRGAN) or "mse" (SRGAN).
    """
    if criterion not in ("l1", "mse"):
        raise ValueError(f"Perceptual criterion must be 'l1' or 'mse'. Received: criterion={criterion!r}")
    missing = [k for k in layer_weights if k not in sr_features or k not in hr_features]
    if missing:
        raise ValueError(f"Features missing for taps {missing}. Received: taps={sorted(sr_features)}")
    fn = PIXEL_LOSSES[criterion]
    total = None
    for name, w in layer_weights.items():
        term = fn(sr_features[name], tf.stop_gradient(hr_features[name]), weight=w, reduction=reduction)
        total = term if total is None else total + term
    return total * tf.cast(weight, tf.float32)
