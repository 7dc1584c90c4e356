"""Channel LayerNorms: the PyTorch "channels-first" LayerNorm (normalise each pixel over its C channels).

PLKSR/RealPLKSR, SAFMN and OmniSR normalise NCHW feature maps over C per pixel (`u = x.mean(1)`,
`s = ((x - u)**2).mean(1)`, `(x - u) / sqrt(s + eps) * weight + bias`). In our NHWC layout that is a
LayerNormalization over the last axis; the models pass their own PyTorch eps (1e-6 in most of these
repositories, torch's `nn.LayerNorm` default 1e-5 elsewhere). Keras computes the statistics in float32
under float16/bfloat16 policies.
"""

from __future__ import annotations

import keras


def channel_layer_norm(eps: float, name: str) -> keras.layers.LayerNormalization:
    """`[N, H, W, C] -> [N, H, W, C]`, each pixel normalised over C with PyTorch epsilon `eps`, affine per channel."""
    return keras.layers.LayerNormalization(axis=-1, epsilon=float(eps), name=name)
