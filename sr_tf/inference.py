"""Running a generator on whole images of any size, tiled when large.

`Upscaler` holds one compiled forward pass per model. `upscale_image` handles what image files
hold: grey, grey + alpha, RGB, RGBA; 8 or 16 bits. The tiling and the grey/alpha handling are
`sr_tf.tiling`'s, the same code the exported SavedModel runs in its graph, so `sr-tf upscale` and a
served model give the same pixels.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from sr_tf.backends import forward_fn
from sr_tf.colorfix import check_color_fix, color_fix
from sr_tf.defaults import TILE_PAD
from sr_tf.models import model_scale
from sr_tf.tiling import ALPHA_MODES, from_unit, to_unit, upscale_channels, upscale_tiled

__all__ = ["ALPHA_MODES", "Upscaler", "resize_float", "upscale_image"]


class Upscaler:
    """A generator with a compiled forward pass. `__call__`: `[H, W, 3] float32 [0, 1] -> [sH, sW, 3]`.

    `backend` ("tf" or "openvino") and `precision` ("float32", "float16", "bfloat16") choose how
    the forward pass runs (see `sr_tf.backends`); inputs and outputs are float32 either way.
    `color_fix` ("none", "wavelet", "adain"; see `sr_tf.colorfix`) takes the colours of each whole
    upscaled image (after tiling) from its bicubic-upscaled input.
    """

    def __init__(self, model: keras.Model, backend: str = "tf", precision: str = "float32", color_fix: str = "none"):
        self.model = model
        self.scale = model_scale(model)
        self.backend, self.precision = backend, precision
        self.color_fix = check_color_fix(color_fix)
        self._forward = forward_fn(model, backend, precision)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """`[N, H, W, 3] float32 -> [N, sH, sW, 3] float32`, one pass, no tiling."""
        return self._forward(np.asarray(batch, np.float32))

    def __call__(
        self,
        rgb: np.ndarray,
        tile: int = 0,
        tile_pad: int = TILE_PAD,
        on_tile: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Upscales one `[H, W, 3]` float32 image in [0, 1].

        `tile`: core size in input pixels (0 = whole image at once); `tile_pad`:
        context on each side. `on_tile(done, total)` is called after each tile.
        """
        if rgb.ndim != 3 or rgb.shape[-1] != 3:
            raise ValueError(f"Upscaler expects [H, W, 3]. Received: shape={rgb.shape}")
        return self.upscale_batch(rgb[None], tile, tile_pad, on_tile)[0]

    def upscale_batch(
        self,
        batch: np.ndarray,
        tile: int = 0,
        tile_pad: int = TILE_PAD,
        on_tile: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Upscales `[N, H, W, 3]` float32 images in [0, 1] of one size (e.g. video frames).

        Tiled like `__call__`; each tile position runs for all N images in one model call.
        """
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise ValueError(f"Upscaler expects [N, H, W, 3]. Received: shape={batch.shape}")
        return self.run_tiled(batch, tile, tile_pad, on_tile).numpy()

    def run_tiled(self, batch: tf.Tensor, tile: int, tile_pad: int, on_tile=None) -> tf.Tensor:
        """`upscale_batch` on a tensor, returning a tensor (for `sr_tf.tiling.upscale_channels`)."""
        out = upscale_tiled(batch, lambda t: self._forward(np.asarray(t)), self.scale, tile, tile_pad, on_tile)
        return color_fix(out, batch, self.color_fix)


def _peak(image: np.ndarray) -> float | None:
    """255 for uint8, 65535 for uint16, None for float images (already in [0, 1])."""
    if image.dtype == np.uint8:
        return 255.0
    if image.dtype == np.uint16:
        return 65535.0
    if np.issubdtype(image.dtype, np.floating):
        return None
    raise ValueError(f"images must be uint8, uint16 or float in [0, 1]. Received: dtype={image.dtype}")


def resize_float(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bicubic resize of `[H, W, C]` float32 (antialiased when shrinking)."""
    return tf.image.resize(image, [height, width], method="bicubic", antialias=True).numpy()


def upscale_image(
    model: keras.Model | Upscaler,
    image: np.ndarray,
    tile: int = 0,
    tile_pad: int = TILE_PAD,
    outscale: float | None = None,
    alpha_mode: str = "model",
    on_tile: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Upscales an image as files hold them, keeping its channels and bit depth.

    Args:
      model: a generator, or an `Upscaler` (reuse one across images to compile once).
      image: `[H, W]` or `[H, W, C]`, C in 1 (gray), 2 (gray+alpha), 3 (RGB), 4 (RGBA);
        uint8, uint16 or float32 in [0, 1].
      tile, tile_pad: tiling, see `Upscaler.__call__`.
      outscale: final factor; when it differs from the model's scale the model
        output is resized (bicubic) to `round(H * outscale) x round(W * outscale)`.
      alpha_mode: "model" runs the alpha channel through the model as a gray image
        (as Real-ESRGAN does); "bicubic" resizes it. A fully opaque alpha is kept opaque.

    Returns:
      The upscaled image with the same channels and dtype.
    """
    if alpha_mode not in ALPHA_MODES:
        raise ValueError(f"alpha_mode must be one of {ALPHA_MODES}. Received: alpha_mode={alpha_mode!r}")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"expected an image [H, W, 1|2|3|4]. Received: shape={image.shape}")
    if outscale is not None and outscale <= 0:
        raise ValueError(f"outscale must be positive. Received: outscale={outscale}")
    upscaler = model if isinstance(model, Upscaler) else Upscaler(model)
    peak = _peak(image)
    h, w, _ = image.shape
    s = upscaler.scale
    x = tf.convert_to_tensor(image, tf.float32) if peak is None else to_unit(image, peak)
    out = upscale_channels(x, lambda batch: upscaler.run_tiled(batch, tile, tile_pad, on_tile), s, alpha_mode)
    if outscale is not None and outscale != s:
        out = tf.convert_to_tensor(resize_float(out.numpy(), max(1, round(h * outscale)), max(1, round(w * outscale))))
    if peak is None:
        return np.clip(out.numpy(), 0.0, 1.0).astype(image.dtype)
    return from_unit(out, peak).numpy().astype(image.dtype)
