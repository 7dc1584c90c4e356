"""Evaluation a user can trust and look at: models + bicubic on a dataset, tables and pictures.

  data       evaluation pairs (HR folders/files/globs, paired NTIRE LR/HR folders, TFRecords)
  methods    the bicubic baseline and generators as `uint8 LR -> uint8 SR` functions
  runner     running and scoring (`sr_tf.metrics`, the papers' convention), crops where models differ
  crops      choosing and cutting aligned crops
  curves     PSNR/SSIM against network-interpolation alpha, drawn as a PNG
  report     results.json, results.md, report.html and the pictures
  workflow   `sr-tf evaluate` as one call: `run_evaluation(EvaluateConfig(...))`
"""

from sr_tf.evaluation.crops import CropBox, crop_panels, disagreement_map, select_crop
from sr_tf.evaluation.curves import (
    CurvePoint,
    alpha_curve,
    parse_alphas,
    plot_curve_png,
)
from sr_tf.evaluation.data import EvalPair, HRPreparation, degrade, open_pairs, prepare_hr
from sr_tf.evaluation.methods import (
    Method,
    bicubic_method,
    bicubic_upscale,
    load_methods,
    model_method,
)
from sr_tf.evaluation.report import (
    ReportFiles,
    markdown_report,
    render_html,
    results_dict,
    write_report,
)
from sr_tf.evaluation.runner import CONVENTION, Evaluation, ImageResult, Scores, evaluate, score
from sr_tf.evaluation.workflow import EvaluateConfig, run_evaluation

__all__ = [
    "CONVENTION",
    "CropBox",
    "CurvePoint",
    "EvalPair",
    "EvaluateConfig",
    "Evaluation",
    "HRPreparation",
    "ImageResult",
    "Method",
    "ReportFiles",
    "Scores",
    "alpha_curve",
    "bicubic_method",
    "bicubic_upscale",
    "crop_panels",
    "degrade",
    "disagreement_map",
    "evaluate",
    "load_methods",
    "markdown_report",
    "model_method",
    "open_pairs",
    "parse_alphas",
    "plot_curve_png",
    "prepare_hr",
    "render_html",
    "results_dict",
    "run_evaluation",
    "score",
    "select_crop",
    "write_report",
]
