"""The perception-distortion trade-off: PSNR/SSIM against network-interpolation alpha, as a PNG.

ESRGAN's network interpolation (`sr_tf.models.interpolate.interpolate_models`) mixes every
parameter of a PSNR-oriented generator and its GAN fine-tune: `(1 - alpha) * psnr + alpha * gan`. Alpha 0 is the PSNR model (highest PSNR),
alpha 1 the GAN model (sharpest, lowest PSNR). The chart is drawn with Pillow (no plotting
dependency): two panels, PSNR and SSIM against alpha, Y channel solid and RGB dashed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

from sr_tf.defaults import TILE_PAD
from sr_tf.evaluation.data import EvalPair
from sr_tf.evaluation.methods import model_method
from sr_tf.evaluation.runner import Scores, score


@dataclasses.dataclass(frozen=True)
class CurvePoint:
    alpha: float
    scores: Scores  # means over the images


def alpha_curve(
    pairs: Sequence[EvalPair],
    psnr_model,
    gan_model,
    alphas: Sequence[float],
    *,
    crop_border: int | None = None,
    tile: int = 0,
    tile_pad: int = TILE_PAD,
    progress: bool = True,
) -> list[CurvePoint]:
    """Mean scores over `pairs` of the interpolated generator at each alpha (see `runner.CONVENTION`)."""
    from tqdm.auto import tqdm

    from sr_tf.models.interpolate import interpolate_models

    pairs = list(pairs)
    if not pairs or not alphas:
        raise ValueError(f"Need images and alphas. Received: {len(pairs)} images, alphas={list(alphas)}")
    # One model and one compiled forward pass; only its weights change with alpha.
    model = interpolate_models(psnr_model, gan_model, float(alphas[0]))
    method = model_method(model, "interpolated", tile=tile, tile_pad=tile_pad)
    border = method.scale if crop_border is None else crop_border
    points = []
    with tqdm(total=len(alphas) * len(pairs), desc="alpha curve", unit="run", disable=not progress) as bar:
        for alpha in alphas:
            model.set_weights(interpolate_models(psnr_model, gan_model, float(alpha)).get_weights())
            scores = []
            for pair in pairs:
                scores.append(score(method.upscale(pair.lr), pair.hr, border, gray=pair.hr_was_gray))
                bar.update(1)
            points.append(CurvePoint(float(alpha), Scores.mean(scores)))
    return points


def parse_alphas(text: str) -> list[float]:
    """`"0,0.5,1"` -> [0, 0.5, 1]; `"0:1:0.25"` -> [0, 0.25, 0.5, 0.75, 1] (start:stop:step, stop included)."""
    try:
        if ":" in text:
            start, stop, step = (float(v) for v in text.split(":"))
            if step <= 0:
                raise ValueError
            count = int(math.floor((stop - start) / step + 1e-9)) + 1
            values = [round(start + i * step, 10) for i in range(count)]
        else:
            values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"alphas must be 'a,b,c' or 'start:stop:step'. Received: {text!r}") from None
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"alphas must be in [0, 1]. Received: {text!r}")
    return values


# --- drawing ------------------------------------------------------------------------------------

_BLUE = (31, 119, 180)
_ORANGE = (214, 39, 40)
_GRID = (225, 225, 225)
_INK = (40, 40, 40)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round tick values (steps of 1, 2 or 5 x 10^k) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"Cannot place ticks on a non-finite range. Received: lo={lo}, hi={hi}")
    if hi - lo < 1e-9:  # a flat line: a small range around it
        pad = max(abs(lo) * 0.01, 1e-3)
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(lo / step) * step
    ticks = [round(first, 10)]
    while ticks[-1] < hi - 1e-12:
        ticks.append(round(first + len(ticks) * step, 10))
    return ticks


def _dashed_line(draw, points, color, width, dash=8, gap=6):
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        length = math.hypot(x1 - x0, y1 - y0)
        pos = 0.0
        while pos < length:
            end = min(pos + dash, length)
            a, b = pos / length, end / length
            draw.line([(x0 + (x1 - x0) * a, y0 + (y1 - y0) * a), (x0 + (x1 - x0) * b, y0 + (y1 - y0) * b)], fill=color, width=width)
            pos = end + gap


def _panel(draw, box, alphas, series, ylabel):
    """Draws one chart in `box = (left, top, right, bottom)`; `series` = [(label, values, color, dashed)]."""
    left, top, right, bottom = box
    font, small = _font(15), _font(13)
    plot = (left + 70, top + 30, right - 15, bottom - 50)
    finite = [v for _, values, _, _ in series for v in values if math.isfinite(v)]
    if not finite:
        draw.text((plot[0], (plot[1] + plot[3]) // 2), "no finite values", fill=_INK, font=font)
        return
    ticks = nice_ticks(min(finite), max(finite))
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    digits = max(0, -math.floor(math.log10(step) + 1e-9))
    y_lo, y_hi = ticks[0], ticks[-1]
    x_lo, x_hi = min(alphas), max(alphas)
    x_hi = x_hi if x_hi > x_lo else x_lo + 1.0

    def px(alpha, value):
        x = plot[0] + (alpha - x_lo) / (x_hi - x_lo) * (plot[2] - plot[0])
        y = plot[3] - (value - y_lo) / (y_hi - y_lo) * (plot[3] - plot[1])
        return x, y

    for t in ticks:
        _, y = px(x_lo, t)
        draw.line([(plot[0], y), (plot[2], y)], fill=_GRID)
        label = f"{t:.{digits}f}"
        w = draw.textlength(label, font=small)
        draw.text((plot[0] - 8 - w, y - 7), label, fill=_INK, font=small)
    for a in alphas:
        x, _ = px(a, y_lo)
        draw.line([(x, plot[3]), (x, plot[3] + 5)], fill=_INK)
        label = f"{a:g}"
        draw.text((x - draw.textlength(label, font=small) / 2, plot[3] + 8), label, fill=_INK, font=small)
    draw.rectangle(plot, outline=_INK)
    draw.text(((plot[0] + plot[2]) / 2 - 20, bottom - 22), "alpha", fill=_INK, font=font)
    draw.text((left + 4, top + 4), ylabel, fill=_INK, font=font)
    legend_x = plot[2]
    for label, values, color, dashed in reversed(series):  # legend right-aligned above the plot
        points = [px(a, v) for a, v in zip(alphas, values, strict=True) if math.isfinite(v)]
        if dashed:
            _dashed_line(draw, points, color, 3)
        else:
            draw.line(points, fill=color, width=3, joint="curve")
        for x, y in points:
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=color)
        legend_x -= draw.textlength(label, font=small) + 6
        draw.text((legend_x + 3, top + 6), label, fill=color, font=small)
        sample = [(legend_x - 30, top + 14), (legend_x - 4, top + 14)]
        if dashed:
            _dashed_line(draw, sample, color, 3, dash=6, gap=4)
        else:
            draw.line(sample, fill=color, width=3)
        legend_x -= 46


def plot_curve_png(points: Sequence[CurvePoint], path: str | Path, title: str = "") -> Path:
    """Writes the PSNR/SSIM-vs-alpha chart (900x420 PNG) to `path`; returns the path."""
    from PIL import Image, ImageDraw

    if not points:
        raise ValueError("No curve points to plot.")
    alphas = [p.alpha for p in points]
    image = Image.new("RGB", (900, 420), "white")
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((12, 8), title, fill=_INK, font=_font(17))

    def values(metric):
        return [getattr(p.scores, metric) for p in points]

    _panel(draw, (0, 34, 450, 420), alphas, [("Y", values("psnr_y"), _BLUE, False), ("RGB", values("psnr_rgb"), _ORANGE, True)], "PSNR (dB)")
    _panel(draw, (450, 34, 900, 420), alphas, [("Y", values("ssim_y"), _BLUE, False), ("RGB", values("ssim_rgb"), _ORANGE, True)], "SSIM")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path
