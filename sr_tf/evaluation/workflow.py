"""`sr-tf evaluate` as a library call: data + models in, a report folder out."""

from __future__ import annotations

import dataclasses
import os
import platform
from pathlib import Path

from sr_tf.backends import check_choice
from sr_tf.config import ConfigBase
from sr_tf.defaults import EVALUATE_TILE, TILE_PAD
from sr_tf.evaluation.curves import CurvePoint, alpha_curve
from sr_tf.evaluation.data import HRPreparation, open_pairs
from sr_tf.evaluation.methods import load_generator, load_methods
from sr_tf.evaluation.report import ReportFiles, write_image_files, write_report
from sr_tf.evaluation.runner import PERCEPTUAL, Evaluation, PerceptualScorer, evaluate

DEFAULT_ALPHAS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclasses.dataclass(frozen=True)
class EvaluateConfig(ConfigBase):
    """What to evaluate and how.

    Attributes:
      data: HR image files/folders/globs, or TFRecord files (see `sr_tf.evaluation.data`).
      out: report folder (created; our files in it are replaced).
      models: catalogue names or `.keras` files; the bicubic baseline is always included.
      scale: upscaling factor (2, 3, 4 or 8); also the metrics' border crop.
      lr_data: folder of LR images paired with `data` by file stem (NTIRE/DIV2K layout).
      degradation: how LR is made from HR when `lr_data` is not given (a name of
        `sr_tf.data.degradations.DEGRADATIONS`).
      seed: seed of random degradations (image i uses the stateless seed `(seed, i)`).
      convention: how bicubic LR and the bicubic baseline are rounded: "matlab" (as MATLAB's
        imresize writes 8-bit images; the published tables) or "pipeline" (see
        `sr_tf.evaluation.data.CONVENTIONS`).
      hr_downscale: integer antialiased downscale of each HR image first (1: none).
      center_crop: centre square crop of each HR image, in HR pixels (0: whole image).
      limit: only the first `limit` images.
      tile, tile_pad: tiled inference for LR images larger than `tile` pixels (0: never tile).
      backend, precision: how the models run (see `sr_tf.backends`).
      crop_size: side of the crop shown per image, in HR pixels (0: no pictures).
      interpolate: `(psnr_model, gan_model)` for the PSNR/SSIM-vs-alpha curve, or None.
      alphas: the alphas of that curve.
      perceptual: perceptual metrics to add, from `sr_tf.evaluation.runner.PERCEPTUAL` ("niqe", "lpips";
        lower is better for both; see `sr_tf.perceptual`).
      lpips_vgg: LPIPS's VGG16 backbone: "keras" (Keras's ImageNet weights, downloaded by Keras; close
        to but not the published LPIPS) or the path of torchvision's `vgg16-397923af.pth` (LPIPS as published).
      html: write report.html.
      progress: progress bars on stderr.
      title: report title.
    """

    data: tuple[str, ...]
    out: str
    models: tuple[str, ...] = ()
    scale: int = 4
    lr_data: str | None = None
    degradation: str = "bicubic"
    seed: int = 0
    convention: str = "matlab"
    hr_downscale: int = 1
    center_crop: int = 0
    limit: int | None = None
    tile: int = EVALUATE_TILE
    tile_pad: int = TILE_PAD
    backend: str = "tf"
    precision: str = "float32"
    crop_size: int = 128
    interpolate: tuple[str, str] | None = None
    alphas: tuple[float, ...] = DEFAULT_ALPHAS
    perceptual: tuple[str, ...] = ()
    lpips_vgg: str = "keras"
    html: bool = True
    progress: bool = True
    title: str = ""

    def __post_init__(self):
        if not self.data:
            raise ValueError("No data given: pass HR image files, folders, globs or TFRecords.")
        if self.crop_size < 0:
            raise ValueError(f"crop_size must be >= 0. Received: crop_size={self.crop_size}")
        check_choice(self.backend, self.precision)
        unknown = [m for m in self.perceptual if m not in PERCEPTUAL]
        if unknown:
            raise ValueError(f"Unknown perceptual metric. Expected some of {PERCEPTUAL}. Received: perceptual={self.perceptual!r}")
        if self.interpolate is not None and len(self.interpolate) != 2:
            raise ValueError(f"interpolate takes two models (PSNR, GAN). Received: {self.interpolate!r}")


def _settings(config: EvaluateConfig, preparation: HRPreparation) -> dict:
    import tensorflow as tf

    import sr_tf

    lr = (
        f"paired LR images from {config.lr_data}"
        if config.lr_data
        else f"sr_tf.data.degradations '{config.degradation}' x{config.scale} of the HR image, rounded to 8 bits"
        + ("" if config.degradation == "bicubic" else f" (seed {config.seed}, image index)")
        + (" after each axis, as MATLAB's imresize of a uint8 image"
           if config.degradation == "bicubic" and config.convention == "matlab" else "")
    )
    return {
        "data": [str(d) for d in config.data],
        "lr": lr,
        "convention": config.convention,
        "hr_preparation": dataclasses.asdict(preparation),
        "limit": config.limit,
        "tile": config.tile,
        "tile_pad": config.tile_pad,
        "backend": config.backend,
        "precision": config.precision,
        "sr_tf": sr_tf.__version__,
        "tensorflow": tf.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, "
        + (f"{len(tf.config.list_physical_devices('GPU'))} GPU(s)"),
    }


def run_evaluation(config: EvaluateConfig) -> tuple[Evaluation, ReportFiles, list[CurvePoint] | None]:
    """Evaluates `config.models` and bicubic on `config.data` and writes the report into `config.out`.

    Bad options, unknown models and missing paths fail before any model runs. Unreadable image
    files are left out and listed in `evaluation.settings["skipped"]` (and the report).

    Returns:
      `(evaluation, written files, curve points or None)`.
    """
    preparation = HRPreparation(config.hr_downscale, config.center_crop)
    skipped: list[str] = []

    def pairs_of_data(skipped_into: list[str]):
        return open_pairs(
            config.data,
            config.scale,
            lr_data=config.lr_data,
            degradation=config.degradation,
            preparation=preparation,
            limit=config.limit,
            seed=config.seed,
            skipped=skipped_into,
            convention=config.convention,
        )

    pairs, total = pairs_of_data(skipped)
    # before any model loads: a missing archive or package fails fast
    perceptual = PerceptualScorer(config.perceptual, config.lpips_vgg) if config.perceptual else None
    methods = load_methods(config.models, config.scale, tile=config.tile, tile_pad=config.tile_pad,
                           backend=config.backend, precision=config.precision, convention=config.convention)
    curve_models = None
    if config.interpolate is not None:
        from sr_tf.models.interpolate import interpolate_models

        curve_models = [load_generator(spec)[0] for spec in config.interpolate]
        interpolate_models(*curve_models, 0.0)  # different architectures fail here, before any run
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict] = {}

    def save_pictures(result, pair):
        files[result.name] = write_image_files(out, result, len(files), pair.hr)

    evaluation = evaluate(
        pairs,
        methods,
        crop_size=config.crop_size,
        progress=config.progress,
        total=total,
        on_image=save_pictures,
        perceptual=perceptual,
    )
    evaluation.settings.update(_settings(config, preparation))
    if skipped:
        evaluation.settings["skipped"] = skipped
    curve = None
    if curve_models is not None:
        again, _ = pairs_of_data([])
        curve = alpha_curve(
            list(again),
            *curve_models,
            config.alphas,
            crop_border=evaluation.crop_border,
            tile=config.tile,
            tile_pad=config.tile_pad,
            progress=config.progress,
        )
        evaluation.settings["interpolation"] = {"psnr_model": config.interpolate[0], "gan_model": config.interpolate[1]}
    written = write_report(out, evaluation, files=files, curve=curve, title=config.title, html_report=config.html)
    return evaluation, written, curve
