"""ESRGAN network interpolation: `(1 - alpha) * psnr_model + alpha * gan_model`, parameter-wise."""

from __future__ import annotations

import keras
import numpy as np


def _arch(model: keras.Model) -> tuple[str, dict]:
    config = dict(model.get_config())
    config.pop("name", None)
    config.pop("trainable", None)
    config.pop("dtype", None)
    return type(model).__name__, config


def interpolate_models(psnr_model: keras.Model, gan_model: keras.Model, alpha: float) -> keras.Model:
    """A new model of the same architecture whose every weight (BN statistics included) is
    `(1 - alpha) * psnr + alpha * gan`. alpha=0 gives the PSNR model, alpha=1 the GAN model.

    Raises ValueError when the two differ in class, config or weight shapes, or alpha is
    outside [0, 1].
    """
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]. Received: alpha={alpha}")
    arch_a, arch_b = _arch(psnr_model), _arch(gan_model)
    if arch_a != arch_b:
        raise ValueError(
            "Cannot interpolate models of different architectures. "
            f"Received: psnr model {arch_a[0]}({arch_a[1]}), gan model {arch_b[0]}({arch_b[1]})"
        )
    wa, wb = psnr_model.get_weights(), gan_model.get_weights()
    shapes_a, shapes_b = [w.shape for w in wa], [w.shape for w in wb]
    if shapes_a != shapes_b:
        raise ValueError(
            f"Cannot interpolate models whose weights differ in shape. Received: {shapes_a} and {shapes_b}"
        )
    out = type(psnr_model).from_config(psnr_model.get_config())
    build_config = psnr_model.get_build_config()
    if build_config:
        out.build_from_config(build_config)
    if len(out.weights) != len(wa):
        raise ValueError("The interpolated model could not be built like its inputs; build the inputs first.")
    out.set_weights(
        [((1.0 - alpha) * a.astype(np.float64) + alpha * b.astype(np.float64)).astype(a.dtype) for a, b in zip(wa, wb, strict=True)]
    )
    return out
