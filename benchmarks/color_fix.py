"""What `--color-fix` buys and costs: mean colour error (CIEDE2000 at the LR scale) and PSNR-Y.

    python3 benchmarks/color_fix.py                                  # realesrgan-x4plus, 3 shared photos
    python3 benchmarks/color_fix.py --model realesr-animevideov3-x4 --crop 256 PHOTO...

Each photo is read, downscaled by 2 (antialiased; the JPEGs are not clean at full size) and centre
cropped to `--crop` pixels: that is HR. LR is HR downscaled x4 with MATLAB's bicubic (`sr_tf.data.
resize`), rounded to 8 bits. The model runs once per photo (untiled) and each colour fix is
applied to that output (`sr_tf.colorfix.color_fix`, what `Upscaler(color_fix=...)` runs after
tiling). Colour error: the output downscaled x4 the same way, against LR, mean CIEDE2000 over
the pixels (`sr_tf.metrics.mean_ciede2000`): how far the model moved the colours the input has,
at the scale where the input is the truth. PSNR-Y against HR, 4 pixels cropped at each border
(the evaluation convention). Bicubic upscaling is listed as the floor of both measures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"
DEFAULT_PHOTOS = ("TwoWings.jpg", "Wood.jpg", "YellowFlower.jpg")  # the photos README's validation split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("photos", nargs="*", help=f"photos (default: {', '.join(DEFAULT_PHOTOS)} from {PHOTOS})")
    parser.add_argument("--model", default="realesrgan-x4plus", help="an x4 model (default: %(default)s)")
    parser.add_argument("--crop", type=int, default=512, help="HR crop edge, a multiple of 4 (default: %(default)s)")
    args = parser.parse_args()

    from machine import describe

    from sr_tf.colorfix import COLOR_FIXES, color_fix
    from sr_tf.evaluation.data import imresize, read_rgb8, to_uint8
    from sr_tf.inference import Upscaler
    from sr_tf.metrics import mean_ciede2000, psnr
    from sr_tf.runtime import load_generator

    print(describe())
    upscaler = Upscaler(load_generator(args.model))
    if upscaler.scale != 4:
        raise SystemExit(f"--model must be x4; {args.model} is x{upscaler.scale}")
    paths = [Path(p) for p in args.photos] or [PHOTOS / name for name in DEFAULT_PHOTOS]
    rows = {name: {"de": [], "psnr": []} for name in ("bicubic", *COLOR_FIXES)}
    for path in paths:
        photo = read_rgb8(path)[0].astype(np.float32) / 255.0
        half = imresize(photo, 2)
        top, left = (half.shape[0] - args.crop) // 2, (half.shape[1] - args.crop) // 2
        hr = to_uint8(half[top:top + args.crop, left:left + args.crop])
        lr = to_uint8(imresize(hr.astype(np.float32) / 255.0, 4))
        x = lr.astype(np.float32)[None] / 255.0
        start = time.perf_counter()
        raw = upscaler.run_tiled(x, 0, 0)
        seconds = time.perf_counter() - start
        outputs = {"bicubic": imresize(lr.astype(np.float32) / 255.0, 0.25)}
        outputs.update({fix: color_fix(raw, x, fix).numpy()[0] for fix in COLOR_FIXES})
        for name, out in outputs.items():
            sr = to_uint8(out)
            back = to_uint8(imresize(sr.astype(np.float32) / 255.0, 4))
            rows[name]["de"].append(float(mean_ciede2000(back, lr)))
            rows[name]["psnr"].append(float(psnr(sr, hr, crop_border=4, y_channel=True)))
        print(f"{path.name}: LR {lr.shape[1]}x{lr.shape[0]}, model {seconds:.1f} s; "
              + ", ".join(f"{n} dE {r['de'][-1]:.3f} / {r['psnr'][-1]:.2f} dB" for n, r in rows.items()))
    print(f"\n{args.model}, {len(paths)} photos ({', '.join(p.name for p in paths)}), HR crop {args.crop}:\n")
    print("| output | mean CIEDE2000 at LR scale (lower is better) | PSNR-Y vs HR, dB |")
    print("|---|---|---|")
    base = np.mean(rows["none"]["psnr"])
    for name, r in rows.items():
        label = "bicubic" if name == "bicubic" else f"{args.model}, --color-fix {name}"
        cost = "" if name in ("bicubic", "none") else f" ({np.mean(r['psnr']) - base:+.2f})"
        print(f"| {label} | {np.mean(r['de']):.3f} | {np.mean(r['psnr']):.2f}{cost} |")


if __name__ == "__main__":
    main()
