"""Aligned crops for side-by-side viewing, placed where the compared outputs differ most."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class CropBox:
    """A square in HR pixels; `y`, `x` and `size` are multiples of the scale, so it covers whole LR pixels."""

    y: int
    x: int
    size: int

    def lr_box(self, scale: int) -> tuple[int, int, int]:
        return self.y // scale, self.x // scale, self.size // scale


def disagreement_map(outputs: Sequence[np.ndarray]) -> np.ndarray:
    """Per-pixel spread of several `[H, W, 3]` images: `[H, W] float64`, the standard deviation across
    images of each pixel's channel mean (0 where all agree)."""
    if len(outputs) < 2:
        raise ValueError(f"Need at least 2 images to compare. Received: {len(outputs)}")
    shapes = {o.shape for o in outputs}
    if len(shapes) != 1:
        raise ValueError(f"Images to compare differ in shape. Received: shapes={sorted(shapes)}")
    stack = np.stack([o.astype(np.float64).mean(axis=-1) for o in outputs])
    return stack.std(axis=0)


def select_crop(score: np.ndarray, size: int, scale: int, border: int = 0) -> CropBox:
    """The `size` x `size` window with the largest total `score`, on the grid of LR pixels.

    Args:
      score: `[H, W]` non-negative (e.g. `disagreement_map`); H and W multiples of `scale`.
      size: crop side in HR pixels (reduced to fit the image, rounded down to a multiple of `scale`).
      scale: upscaling factor; corners are multiples of it.
      border: HR pixels near the edge the window avoids when it can (the metrics' crop border).

    Returns:
      The best window; the first (top-most, then left-most) one among equals.
    """
    h, w = score.shape
    size = min(size, h, w)
    size -= size % scale
    if size < scale:
        raise ValueError(f"Crop size must be at least the scale. Received: size={size}, scale={scale}")
    integral = np.zeros((h + 1, w + 1), np.float64)
    integral[1:, 1:] = np.cumsum(np.cumsum(score, axis=0), axis=1)

    def starts(length: int) -> np.ndarray:
        lo = border + (-border) % scale
        hi = length - size - border
        if hi < lo:  # the border does not fit around the window: ignore it
            lo, hi = 0, length - size
        return np.arange(lo, hi + 1, scale)

    ys, xs = starts(h), starts(w)
    y0, x0 = ys[:, None], xs[None, :]
    sums = integral[y0 + size, x0 + size] - integral[y0, x0 + size] - integral[y0 + size, x0] + integral[y0, x0]
    i, j = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return CropBox(int(ys[i]), int(xs[j]), int(size))


def crop_panels(
    lr: np.ndarray, outputs: Mapping[str, np.ndarray], hr: np.ndarray, box: CropBox, scale: int
) -> dict[str, np.ndarray]:
    """The same region of every image at HR resolution: `{"LR": ..., **outputs, "HR": ...}`.

    The LR crop is upscaled by pixel repetition (nearest neighbour) so what the model saw is
    shown as it is. All crops are `[size, size, 3] uint8`.
    """
    ly, lx, ls = box.lr_box(scale)
    lr_crop = lr[ly : ly + ls, lx : lx + ls]
    panels = {"LR": np.repeat(np.repeat(lr_crop, scale, axis=0), scale, axis=1)}
    region = (slice(box.y, box.y + box.size), slice(box.x, box.x + box.size))
    for name, image in outputs.items():
        panels[name] = image[region]
    panels["HR"] = hr[region]
    return panels
