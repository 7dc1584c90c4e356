"""Running every method on every image and scoring the outputs as papers do."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from sr_tf import metrics
from sr_tf.evaluation.crops import CropBox, crop_panels, disagreement_map, select_crop
from sr_tf.evaluation.data import EvalPair
from sr_tf.evaluation.methods import BICUBIC, Method

METRICS = ("psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y")
CONVENTION = (
    "PSNR and SSIM on 8-bit outputs (clipped and rounded, as saved files), on RGB and on the Y channel "
    "of BT.601 YCbCr as MATLAB's rgb2ycbcr (Y = 16 + 65.481 R + 128.553 G + 24.966 B, R, G, B in [0, 1]), "
    "after removing {crop} pixels on each border (crop = scale); greyscale HR images on their grey values "
    "(Y of the output: 0.299 R + 0.587 G + 0.114 B, full range), as published tables do; SSIM with an 11x11 Gaussian window "
    "(sigma 1.5), 'valid' filtering, C1 = (0.01*255)^2, C2 = (0.03*255)^2, averaged over channels for "
    "RGB: the convention of BasicSR's calculate_psnr / calculate_ssim. Means are over images."
)


@dataclasses.dataclass(frozen=True)
class Scores:
    """Metrics of one output against its HR image; PSNR in dB (`inf` for identical images)."""

    psnr_rgb: float
    ssim_rgb: float
    psnr_y: float
    ssim_y: float
    seconds: float | None = None

    @staticmethod
    def mean(scores: Sequence[Scores]) -> Scores:
        """Mean of each metric over images (`inf` if any PSNR is infinite; seconds over those timed)."""
        values = {m: float(np.mean([getattr(s, m) for s in scores])) for m in METRICS}
        times = [s.seconds for s in scores if s.seconds is not None]
        return Scores(**values, seconds=float(np.mean(times)) if times else None)


@dataclasses.dataclass
class ImageResult:
    """Results for one image: scores per method name, the crop shown and its panels (`[S, S, 3] uint8`)."""

    name: str
    source: str
    hr_size: tuple[int, int]
    lr_size: tuple[int, int]
    notes: list[str]
    scores: dict[str, Scores]
    crop: CropBox | None = None
    panels: dict[str, np.ndarray] = dataclasses.field(default_factory=dict, repr=False)


@dataclasses.dataclass
class Evaluation:
    """Everything `sr-tf evaluate` reports. `settings` holds JSON-ready facts about the run."""

    methods: list[Method]
    images: list[ImageResult]
    scale: int
    crop_border: int
    settings: dict = dataclasses.field(default_factory=dict)

    @property
    def method_names(self) -> list[str]:
        return [m.name for m in self.methods]

    def means(self) -> dict[str, Scores]:
        return {name: Scores.mean([im.scores[name] for im in self.images]) for name in self.method_names}

    @property
    def convention(self) -> str:
        return CONVENTION.format(crop=self.crop_border)


def score(
    sr: np.ndarray, hr: np.ndarray, crop_border: int, seconds: float | None = None, gray: bool = False
) -> Scores:
    """Scores an `[H, W, 3] uint8` output against `[H, W, 3] uint8` HR (see `CONVENTION`).

    `gray`: HR is a greyscale image expanded to RGB; the Y metrics then compare its grey values
    with the output's full-range luma (`sr_tf.metrics.rgb_to_gray`), not two 16-235 Y channels.
    """
    values = {}
    for y_channel, suffix in ((False, "rgb"), (True, "y")):
        a, b, kwargs = sr, hr, {"crop_border": crop_border, "y_channel": y_channel}
        if y_channel and gray:
            a, b = metrics.rgb_to_gray(sr).numpy(), hr[..., :1].astype(np.float64)
            kwargs = {"crop_border": crop_border, "max_val": 255}
        values[f"psnr_{suffix}"] = float(metrics.psnr(a, b, **kwargs))
        values[f"ssim_{suffix}"] = float(metrics.ssim(a, b, **kwargs))
    return Scores(**values, seconds=seconds)


def warm_up(methods: Sequence[Method], size: int = 16) -> None:
    """Runs each method once on a small input so timings exclude graph tracing and first-call costs."""
    probe = np.zeros((size, size, 3), np.uint8)
    for method in methods:
        method.upscale(probe)


def upscale_timed(method: Method, lr: np.ndarray, hr_shape: tuple[int, ...]) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    sr = method.upscale(lr)
    seconds = time.perf_counter() - start
    if sr.shape != hr_shape or sr.dtype != np.uint8:
        raise ValueError(
            f"Method {method.name!r} returned {sr.shape} {sr.dtype} for an LR image of {lr.shape}; "
            f"expected {hr_shape} uint8."
        )
    return sr, seconds


def evaluate(
    pairs: Iterable[EvalPair],
    methods: Sequence[Method],
    *,
    crop_border: int | None = None,
    crop_size: int = 128,
    progress: bool = True,
    total: int | None = None,
    on_image: Callable[[ImageResult, EvalPair], None] | None = None,
) -> Evaluation:
    """Runs every method on every pair and scores it.

    Args:
      pairs: evaluation images (read lazily; one image's outputs are held at a time).
      methods: what to compare, all of the same scale (the bicubic baseline among them).
      crop_border: border removed before scoring (None: the scale, as papers do).
      crop_size: side in HR pixels of the crop shown per image, placed where the models differ
        most (where the model and bicubic differ, when there is only one model). 0: no crops.
      progress: show a progress bar over images x methods.
      total: number of pairs, for the progress bar.
      on_image: called with each image's results and its pair as soon as they are ready
        (e.g. to write its pictures, so no HR image is kept).

    Returns:
      An `Evaluation`; per-image `seconds` are wall time of the method on that image (after a
      warm-up run on a 16x16 input), including tiling and conversions.
    """
    methods = list(methods)
    if not methods:
        raise ValueError("Nothing to evaluate: no methods given.")
    scales = {m.scale for m in methods}
    if len(scales) != 1:
        raise ValueError(f"All methods must have the same scale. Received: { {m.name: m.scale for m in methods} }")
    scale = scales.pop()
    crop_border = scale if crop_border is None else int(crop_border)
    warm_up(methods)
    from tqdm.auto import tqdm

    bar = tqdm(
        total=None if total is None else total * len(methods),
        desc="evaluate",
        unit="run",
        disable=not progress,
        dynamic_ncols=True,
    )
    results = []
    seen: set[str] = set()
    try:
        for pair in pairs:
            if pair.name in seen:  # same file name in two folders: keep both apart in the report
                pair = dataclasses.replace(pair, name=f"{pair.name} ({len(results) + 1})")
            seen.add(pair.name)
            if pair.hr.shape[:2] != (pair.lr.shape[0] * scale, pair.lr.shape[1] * scale):
                raise ValueError(f"Image {pair.name!r}: HR {pair.hr.shape} is not LR {pair.lr.shape} x{scale}.")
            outputs, scores = {}, {}
            for method in methods:
                bar.set_postfix_str(f"{pair.name}: {method.name}", refresh=False)
                sr, seconds = upscale_timed(method, pair.lr, pair.hr.shape)
                outputs[method.name] = sr
                scores[method.name] = score(sr, pair.hr, crop_border, seconds, gray=pair.hr_was_gray)
                bar.update(1)
            result = ImageResult(
                pair.name, pair.source, pair.hr.shape[:2], pair.lr.shape[:2], list(pair.notes), scores
            )
            if crop_size:
                result.crop = choose_crop(outputs, crop_size, scale, crop_border)
                result.panels = crop_panels(pair.lr, outputs, pair.hr, result.crop, scale)
            results.append(result)
            if on_image is not None:
                on_image(result, pair)
    finally:
        bar.close()
    if not results:
        raise ValueError("Nothing to evaluate: no images.")
    settings = {"crop_border": crop_border, "crop_size": crop_size, "timing": "wall seconds per image after warm-up"}
    return Evaluation(methods, results, scale, crop_border, settings)


def choose_crop(outputs: dict[str, np.ndarray], size: int, scale: int, border: int) -> CropBox:
    """Where the models' outputs differ most (model vs bicubic when there is a single model)."""
    models = [image for name, image in outputs.items() if name != BICUBIC]
    compared = models if len(models) >= 2 else list(outputs.values())
    if len(compared) < 2:  # bicubic alone: nothing to compare, show the centre
        h, w = compared[0].shape[:2]
        size = min(size, h, w)
        size -= size % scale
        return CropBox((h - size) // 2 // scale * scale, (w - size) // 2 // scale * scale, size)
    return select_crop(disagreement_map(compared), size, scale, border)


def format_value(value: float | None, digits: int) -> str:
    """`27.1234 -> '27.12'`, `inf -> 'inf'`, None -> '-'."""
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}f}"
