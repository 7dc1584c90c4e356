"""Crops of the real photos in ../shared/data/photos (a synthetic image where they are missing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "photos"
NAMES = ("LadyBird.jpg", "Wood.jpg")


def crops(size: int, names: tuple[str, ...] = NAMES) -> list[np.ndarray]:
    """`[size, size + 6, 3] float32` in [0, 1] (8-bit values / 255, as the ncnn programs read them)."""
    if PHOTOS.is_dir():
        from PIL import Image

        out = []
        for name in names:
            with Image.open(PHOTOS / name) as im:
                rgb = np.asarray(im.convert("RGB"))
            y, x = rgb.shape[0] // 3, rgb.shape[1] // 3
            out.append(rgb[y : y + size, x : x + size + 6].astype(np.float32) * np.float32(1 / 255))
        return out
    yy, xx = np.mgrid[0:size, 0 : size + 6] / size
    synthetic = np.stack([np.sin(9 * xx) * 0.5 + 0.5, (yy > 0.5) * 0.8, (xx * yy) % 0.3 / 0.3], -1)
    return [synthetic.astype(np.float32)]
