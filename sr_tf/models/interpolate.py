"""Blending same-architecture weight sets, parameter by parameter.

Two forms of one idea:

* ESRGAN network interpolation (`interpolate_models`): a new model, offline, whose weights are
  `(1 - alpha) * psnr_model + alpha * gan_model`.
* A knob per call (`WeightBlend`): several weight sets placed at levels along one axis, blended at
  a `strength` given with each call, inside the graph (the model's variables are never assigned, so
  concurrent calls with different strengths do not interfere). With two sets at levels 0 and 1 this is
  Real-ESRGAN's `-dn` (denoise strength): `w = s * A + (1 - s) * B`, A at s=1 and B at s=0. With more
  (waifu2x noise -1..3, Real-CUGAN conservative/no-denoise/denoise1x-3x) it is piecewise linear between
  neighbouring levels. The direction convention against `interpolate_models`:
  `WeightBlend([B, A]).at(s)` equals `interpolate_models(psnr_model=B, gan_model=A, alpha=s)`.

`check_same_architecture` is the one compatibility check both use.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np


def _arch(model: keras.Model) -> tuple[str, dict]:
    config = dict(model.get_config())
    config.pop("name", None)
    config.pop("trainable", None)
    config.pop("dtype", None)
    return type(model).__name__, config


def check_same_architecture(models: Sequence[keras.Model], names: Sequence[str] | None = None) -> None:
    """Raises ValueError unless every model has the first one's class, config and weight shapes.

    `names`: what to call the models in the message (default "model 0", "model 1", ...).
    """
    names = list(names) if names is not None else [f"model {i}" for i in range(len(models))]
    first, first_shapes = _arch(models[0]), [w.shape for w in models[0].weights]
    for model, name in zip(models[1:], names[1:], strict=True):
        arch = _arch(model)
        if arch != first:
            raise ValueError(
                "Cannot blend models of different architectures. "
                f"Received: {names[0]} {first[0]}({first[1]}), {name} {arch[0]}({arch[1]})"
            )
        shapes = [w.shape for w in model.weights]
        if shapes != first_shapes:
            raise ValueError(
                f"Cannot blend models whose weights differ in shape. Received: {names[0]} {first_shapes} "
                f"and {name} {shapes}"
            )


def interpolate_models(psnr_model: keras.Model, gan_model: keras.Model, alpha: float) -> keras.Model:
    """A new model of the same architecture whose every weight (BN statistics included) is
    `(1 - alpha) * psnr + alpha * gan`. alpha=0 gives the PSNR model, alpha=1 the GAN model.

    Raises ValueError when the two differ in class, config or weight shapes, or alpha is
    outside [0, 1].
    """
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]. Received: alpha={alpha}")
    check_same_architecture([psnr_model, gan_model], ["psnr model", "gan model"])
    wa, wb = psnr_model.get_weights(), gan_model.get_weights()
    out = _like(psnr_model)
    out.set_weights(
        [((1.0 - alpha) * a.astype(np.float64) + alpha * b.astype(np.float64)).astype(a.dtype) for a, b in zip(wa, wb, strict=True)]
    )
    return out


def _like(model: keras.Model) -> keras.Model:
    """An unweighted copy of `model`'s architecture, built like it."""
    out = type(model).from_config(model.get_config())
    build_config = model.get_build_config()
    if build_config:
        out.build_from_config(build_config)
    if len(out.weights) != len(model.weights):
        raise ValueError("The blended model could not be built like its inputs; build the inputs first.")
    return out


def blend_coefficients(levels: Sequence[float], strength):
    """The weight of each level's set at `strength`: piecewise-linear "hat" functions over `levels`.

    Args:
      levels: strictly increasing floats, one per weight set.
      strength: a scalar (Python float or 0-d tensor); clipped to `[levels[0], levels[-1]]`.
    Returns:
      A list of `len(levels)` 0-d float32 tensors in [0, 1]: at a level exactly that set's is 1 and
      every other 0 (so the blend equals that set bit for bit); between two neighbours the two are
      `(l1 - s) / (l1 - l0)` and `(s - l0) / (l1 - l0)`.
    """
    s = keras.ops.clip(keras.ops.cast(strength, "float32"), levels[0], levels[-1])
    out = []
    for k, level in enumerate(levels):
        rise = (s - levels[k - 1]) / (level - levels[k - 1]) if k > 0 else 1.0
        fall = (levels[k + 1] - s) / (levels[k + 1] - level) if k + 1 < len(levels) else 1.0
        out.append(keras.ops.clip(keras.ops.minimum(rise, fall), 0.0, 1.0))
    return out


class WeightBlend:
    """Weight sets of one architecture at levels of a strength axis, blended per call.

    Args:
      models: built Keras generators of one architecture (`check_same_architecture`).
      levels: one strictly increasing float per model (default `0, 1, ...`: two models give
        Real-ESRGAN's `-dn` axis, the first at strength 0 and the second at 1).
      default: the strength used when a caller gives none (default: the middle of the range).

    Raises ValueError for fewer than two models, incompatible ones, levels that are not strictly
    increasing or not one per model, or a default outside the range.
    """

    def __init__(self, models: Sequence[keras.Model], levels: Sequence[float] | None = None,
                 default: float | None = None, names: Sequence[str] | None = None):
        models = list(models)
        if len(models) < 2:
            raise ValueError(f"A blend needs at least two models. Received: {len(models)} model(s)")
        levels = [float(x) for x in (levels if levels is not None else range(len(models)))]
        if len(levels) != len(models) or any(b <= a for a, b in zip(levels, levels[1:], strict=False)):
            raise ValueError(f"`levels` must be strictly increasing, one per model. Received: levels={levels} "
                             f"for {len(models)} models")
        check_same_architecture(models, names)
        self.models, self.levels = models, levels
        self.default = (levels[0] + levels[-1]) / 2 if default is None else float(default)
        self.check_strength(self.default, "default")

    @property
    def range(self) -> tuple[float, float]:
        return self.levels[0], self.levels[-1]

    def check_strength(self, strength: float, name: str = "strength") -> float:
        """`strength` as a float; ValueError when it is outside `range`."""
        strength = float(strength)
        lo, hi = self.range
        if not lo <= strength <= hi:
            raise ValueError(f"`{name}` must be in [{lo:g}, {hi:g}]. Received: {name}={strength:g}")
        return strength

    def values(self, strength) -> tuple[list, list]:
        """(trainable, non-trainable) variable values of the blend at `strength` (tensors; in a
        graph, `strength` may be a tensor), in the first model's variable order."""
        coefficients = blend_coefficients(self.levels, strength)

        def blend(variables_per_model):
            out = []
            for variables in zip(*variables_per_model, strict=True):
                total = None
                for c, v in zip(coefficients, variables, strict=True):
                    term = keras.ops.cast(c, v.dtype) * v
                    total = term if total is None else total + term
                out.append(total)
            return out

        return (blend([m.trainable_variables for m in self.models]),
                blend([m.non_trainable_variables for m in self.models]))

    def __call__(self, x, strength=None):
        """`[N, H, W, 3]` in [0, 1] -> the first model's output with the blended weights."""
        trainable, non_trainable = self.values(self.default if strength is None else strength)
        y, _ = self.models[0].stateless_call(trainable, non_trainable, x)
        return y

    def at(self, strength: float) -> keras.Model:
        """A plain Keras model with the blend's weights at `strength` (same arithmetic as a call)."""
        strength = self.check_strength(strength)
        trainable, non_trainable = self.values(strength)
        out = _like(self.models[0])
        for variable, value in zip(out.trainable_variables + out.non_trainable_variables,
                                   trainable + non_trainable, strict=True):
            variable.assign(value)
        return out
