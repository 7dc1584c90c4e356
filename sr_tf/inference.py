"""Running a generator on whole images of any size, tiled when large.

`Upscaler` holds one compiled forward pass per model. `upscale_image`
handles what image files hold: gray, gray + alpha, RGB, RGBA; 8 or 16 bits.
Tiling: the image is cut into `tile` x `tile` cores, each run with `tile_pad`
pixels of real context on every side that has any, and neighbouring outputs
are blended with linear ramps `tile_pad` wide centred on each cut, so no seam
shows. Outputs are exact when the model sees at most tile_pad/2 pixels away.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from sr_tf.backends import forward_fn
from sr_tf.models import model_scale

ALPHA_MODES = ("model", "bicubic")
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, as PIL's "L" conversion


def _spans(size: int, tile: int, pad: int) -> list[tuple[int, int, int, int]]:
    """Per axis: (core_start, core_end, ext_start, ext_end) for each tile."""
    spans = []
    for start in range(0, size, tile):
        end = min(start + tile, size)
        spans.append((start, end, max(start - pad, 0), min(end + pad, size)))
    return spans


def _ramp(ext_start: int, core_start: int, core_end: int, ext_end: int, pad: int, scale: int) -> np.ndarray:
    """Blend weights along one axis of a tile's output.

    Across each boundary with a neighbour the weight falls linearly from 1 to
    0 over `pad` pixels centred on the boundary, and is 0 beyond: no tile
    contributes pixels nearer than pad/2 to its own cut edge, where its
    context is missing. Away from neighbours the weight is 1.
    """
    u = (np.arange((ext_end - ext_start) * scale, dtype=np.float32) + 0.5) / scale + ext_start
    w = np.ones_like(u)
    half = pad / 2
    if core_start > ext_start:  # a neighbour before
        w = np.minimum(w, np.clip((u - (core_start - half)) / max(pad, 1e-6), 0, 1))
    if core_end < ext_end:  # a neighbour after
        w = np.minimum(w, np.clip(((core_end + half) - u) / max(pad, 1e-6), 0, 1))
    return w


class Upscaler:
    """A generator with a compiled forward pass. `__call__`: `[H, W, 3] float32 [0, 1] -> [sH, sW, 3]`.

    `backend` ("tf" or "openvino") and `precision` ("float32", "float16", "bfloat16") choose how
    the forward pass runs (see `sr_tf.backends`); inputs and outputs are float32 either way.
    """

    def __init__(self, model: keras.Model, backend: str = "tf", precision: str = "float32"):
        self.model = model
        self.scale = model_scale(model)
        self.backend, self.precision = backend, precision
        self._forward = forward_fn(model, backend, precision)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """`[N, H, W, 3] float32 -> [N, sH, sW, 3] float32`, one pass, no tiling."""
        return self._forward(np.asarray(batch, np.float32))

    def __call__(
        self,
        rgb: np.ndarray,
        tile: int = 0,
        tile_pad: int = 16,
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
        tile_pad: int = 16,
        on_tile: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Upscales `[N, H, W, 3]` float32 images in [0, 1] of one size (e.g. video frames).

        Tiled like `__call__`; each tile position runs for all N images in one model call.
        """
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise ValueError(f"Upscaler expects [N, H, W, 3]. Received: shape={batch.shape}")
        if tile < 0 or tile_pad < 0:
            raise ValueError(f"tile and tile_pad must be >= 0. Received: tile={tile}, tile_pad={tile_pad}")
        n, h, w, _ = batch.shape
        pad, s = tile_pad, self.scale
        if tile == 0 or (h <= tile and w <= tile):
            out = self.run(batch)
            if on_tile:
                on_tile(1, 1)
            return out
        rows, cols = _spans(h, tile, pad), _spans(w, tile, pad)
        acc = np.zeros((n, h * s, w * s, 3), np.float32)
        weight = np.zeros((1, h * s, w * s, 1), np.float32)
        total, done = len(rows) * len(cols), 0
        for cy0, cy1, ey0, ey1 in rows:
            wy = _ramp(ey0, cy0, cy1, ey1, pad, s)
            for cx0, cx1, ex0, ex1 in cols:
                wx = _ramp(ex0, cx0, cx1, ex1, pad, s)
                out = self.run(batch[:, ey0:ey1, ex0:ex1])
                mask = (wy[:, None] * wx[None, :])[None, ..., None]
                acc[:, ey0 * s : ey1 * s, ex0 * s : ex1 * s] += out * mask
                weight[:, ey0 * s : ey1 * s, ex0 * s : ex1 * s] += mask
                done += 1
                if on_tile:
                    on_tile(done, total)
        return acc / weight


def _to_float(image: np.ndarray) -> tuple[np.ndarray, float]:
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0, 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0, 65535.0
    if np.issubdtype(image.dtype, np.floating):
        return image.astype(np.float32), 1.0
    raise ValueError(f"images must be uint8, uint16 or float in [0, 1]. Received: dtype={image.dtype}")


def _from_float(image: np.ndarray, max_value: float, dtype) -> np.ndarray:
    if max_value == 1.0:
        return np.clip(image, 0.0, 1.0).astype(dtype)
    return np.round(np.clip(image, 0.0, 1.0) * max_value).astype(dtype)


def resize_float(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bicubic resize of `[H, W, C]` float32 (antialiased when shrinking)."""
    return tf.image.resize(image, [height, width], method="bicubic", antialias=True).numpy()


def upscale_image(
    model: keras.Model | Upscaler,
    image: np.ndarray,
    tile: int = 0,
    tile_pad: int = 16,
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
    dtype = image.dtype
    x, max_value = _to_float(image)
    h, w, c = x.shape
    s = upscaler.scale
    color, alpha = (x[..., :1], x[..., 1:]) if c in (1, 2) else (x[..., :3], x[..., 3:])
    gray = color.shape[-1] == 1
    rgb = np.repeat(color, 3, axis=-1) if gray else color
    out = upscaler(rgb, tile, tile_pad, on_tile=on_tile)
    if gray:
        out = (out @ LUMA)[..., None]
    if alpha.shape[-1]:
        if np.all(alpha == 1.0):
            out_alpha = np.ones((h * s, w * s, 1), np.float32)
        elif alpha_mode == "model":
            out_alpha = upscaler(np.repeat(alpha, 3, axis=-1), tile, tile_pad).mean(axis=-1, keepdims=True)
        else:
            out_alpha = resize_float(alpha, h * s, w * s)
        out = np.concatenate([out, out_alpha], axis=-1)
    if outscale is not None and outscale != s:
        out = resize_float(out, max(1, round(h * outscale)), max(1, round(w * outscale)))
    return _from_float(out, max_value, dtype)
