"""A test-only checkpoint architecture: one conv and a pixel shuffle (PyTorch keys `head.weight`,
`head.bias`), so the checkpoint entry points and CLI can be tested without the real architectures.

Register it with `monkeypatch.setattr(registry, "ARCHITECTURES", (tiny_arch.__name__,))`.
"""

from __future__ import annotations

import keras
import numpy as np

from sr_tf.models.layers import PixelShuffle

NAME = "TinyConv"


@keras.saving.register_keras_serializable(package="sr_tf_tests")
class TinyConv(keras.Model):
    """`[N, H, W, C] float32 -> [N, s*H, s*W, C]`: a `kernel_size` conv to C*s*s channels, pixel shuffle."""

    def __init__(self, in_channels: int = 3, scale: int = 2, kernel_size: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.scale, self.kernel_size = int(in_channels), int(scale), int(kernel_size)
        self.conv = keras.layers.Conv2D(self.in_channels * self.scale ** 2, self.kernel_size, padding="same",
                                        name="head")
        self.shuffle = PixelShuffle(self.scale)

    def call(self, x):
        return self.shuffle(self.conv(x))

    def get_config(self):
        return {**super().get_config(), "in_channels": self.in_channels, "scale": self.scale,
                "kernel_size": self.kernel_size}


def detect(state) -> dict | None:
    if set(state) != {"head.weight", "head.bias"}:
        return None
    out, in_ch, k, _ = state.shape("head.weight")
    scale = round((out / in_ch) ** 0.5)
    if scale * scale * in_ch != out:
        return None
    return {"in_channels": in_ch, "scale": scale, "kernel_size": k}


def build(params: dict) -> keras.Model:
    model = TinyConv(**params)
    model(np.zeros((1, 4, 4, params["in_channels"]), np.float32))
    return model


def assign(model: TinyConv, state) -> None:
    c, r2 = model.in_channels, model.scale ** 2
    # torch's pixel_shuffle reads output channel c*r*r + k, depth_to_space reads k*C + c
    kernel = state.conv("head.weight")
    kernel = kernel.reshape(*kernel.shape[:3], c, r2).swapaxes(-1, -2).reshape(kernel.shape)
    bias = state.take("head.bias").reshape(c, r2).T.reshape(-1)
    model.conv.kernel.assign(kernel)
    model.conv.bias.assign(bias)
