"""How far reduced precision moves the 8-bit output from float32, on crops of real photos.

    python benchmarks/precision.py                                  # both models, every photo
    python benchmarks/precision.py --models realesr-animevideov3-x4:128 --precisions bfloat16

For each model (NAME:SIZE) and each photo in ../shared/data/photos, the centre SIZE x SIZE crop
is upscaled by `Upscaler` in float32 and in each reduced precision (weights and arithmetic in
that dtype, `sr_tf.backends.cast_model`); both outputs are rounded to 8 bits, as saved files
hold them, and compared: PSNR (dB, RGB) and the largest difference in 8-bit levels. Prints
per-photo figures and the mean and minimum PSNR.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import numpy as np

PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "photos"
DEFAULT_MODELS = ("realesrgan-x4plus:96", "realesr-animevideov3-x4:192")


def crops(size: int):
    from PIL import Image

    for path in sorted(PHOTOS.glob("*.jpg")):
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
        y, x = rgb.shape[0] // 2 - size // 2, rgb.shape[1] // 2 - size // 2
        yield path.stem, rgb[y : y + size, x : x + size].astype(np.float32) / 255.0


def to8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0, 1) * 255)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), metavar="NAME:SIZE")
    parser.add_argument("--precisions", nargs="+", default=["bfloat16", "float16"])
    parser.add_argument("--backend", default="tf")
    args = parser.parse_args()

    from machine import describe

    from sr_tf.inference import Upscaler
    from sr_tf.runtime.catalogue import load_pretrained

    print(describe())
    print(f"backend={args.backend}; photos: {PHOTOS}; load {os.getloadavg()[0]:.1f}")
    for spec in args.models:
        name, _, size = spec.partition(":")
        size = int(size or 128)
        model = load_pretrained(name)
        runs = {p: Upscaler(model, args.backend, p) for p in ["float32", *args.precisions]}
        psnrs = {p: [] for p in args.precisions}
        print(f"\n{name}, centre {size}x{size} crops -> x{runs['float32'].scale}; PSNR vs float32 (max |diff| in levels)")
        print(f"{'photo':14s}" + "".join(f"{p:>22s}" for p in args.precisions))
        for stem, image in crops(size):
            reference = to8(runs["float32"](image))
            cells = []
            for p in args.precisions:
                out = to8(runs[p](image))
                mse = float(np.mean((out - reference) ** 2))
                value = float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
                psnrs[p].append(value)
                cells.append(f"{value:8.2f} dB ({int(np.abs(out - reference).max()):3d})")
            print(f"{stem:14s}" + "".join(f"{c:>22s}" for c in cells), flush=True)
        print(f"{'mean / min':14s}" + "".join(
            f"{statistics.mean(v):>10.2f} / {min(v):5.2f} dB" for v in psnrs.values()))


if __name__ == "__main__":
    main()
