"""Perceptual image-quality metrics, beside `sr_tf.metrics`' PSNR/SSIM (lower is better for both).

  niqe    NIQE: no reference; how natural an image looks (BasicSR's pristine model and computation)
  lpips   LPIPS-VGG: distance to the ground truth in VGG16 features, weighted as humans judge

Both read published parameters from files (BasicSR's source archive, the lpips package); neither
needs torch. `sr-tf evaluate --perceptual niqe lpips` adds them to the report.
"""

from sr_tf.perceptual.lpips import LPIPS, linear_weights
from sr_tf.perceptual.niqe import niqe, niqe_available, pristine_params

__all__ = ["LPIPS", "linear_weights", "niqe", "niqe_available", "pristine_params"]
