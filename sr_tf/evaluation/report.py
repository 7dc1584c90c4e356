"""Writing an evaluation: `results.json`, `results.md`, `report.html` and the pictures they show.

Layout of the report folder:

  results.json        every number (per image and mean), the settings and the metric convention
  results.md          Markdown tables (means, then per image)
  report.html         the tables plus, per image, aligned crops (LR nearest-upscaled, bicubic,
                      each model, HR) and a thumbnail showing where the crop lies
  images/NNN-name/    the crops as PNG, `side_by_side.png` (all crops in a row, labelled) and
                      `overview.png`
  curve.png           PSNR/SSIM against interpolation alpha, when asked for

Infinite PSNR (identical images) is written as the string "inf" in JSON (JSON has no infinity)
and as "inf" in the tables.
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import json
import math
import os
import re
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sr_tf.evaluation.curves import CurvePoint, plot_curve_png
from sr_tf.evaluation.runner import (
    METRICS,
    PERCEPTUAL,
    Evaluation,
    ImageResult,
    Scores,
    format_value,
)
from sr_tf.integrity import atomic_write_text

SCHEMA_VERSION = 1
COLUMNS = (  # (metric, header, digits): higher is better
    ("psnr_y", "PSNR-Y (dB)", 2),
    ("ssim_y", "SSIM-Y", 4),
    ("psnr_rgb", "PSNR-RGB (dB)", 2),
    ("ssim_rgb", "SSIM-RGB", 4),
)
PERCEPTUAL_COLUMNS = {  # lower is better, as the arrows say
    "niqe": ("niqe", "NIQE ↓", 3),
    "lpips": ("lpips", "LPIPS ↓", 4),
}
LOWER_IS_BETTER = frozenset(PERCEPTUAL)


def columns(evaluation: Evaluation) -> tuple[tuple[str, str, int], ...]:
    """The table columns of this evaluation: PSNR/SSIM, then the perceptual metrics measured."""
    return COLUMNS + tuple(PERCEPTUAL_COLUMNS[m] for m in evaluation.perceptual)


def _best(rows: dict[str, Scores], metric: str) -> float | None:
    """The best value of a column (max, or min for NIQE/LPIPS), ignoring missing ones."""
    values = [getattr(s, metric) for s in rows.values() if getattr(s, metric) is not None]
    if not values:
        return None
    return min(values) if metric in LOWER_IS_BETTER else max(values)
DISPLAY_PX = 256  # on-screen side of a crop in the HTML report and side-by-side picture


@dataclasses.dataclass(frozen=True)
class ReportFiles:
    results_json: Path
    markdown: Path
    html: Path | None
    side_by_side: list[Path]
    curve_png: Path | None


# --- JSON ---------------------------------------------------------------------------------------


def _jsonable(value):
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if math.isnan(value):
            return "nan"
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return _jsonable(value.item())
    if isinstance(value, Path):
        return str(value)
    return value


def _scores_dict(scores: Scores) -> dict:
    """The metrics of one row; NIQE / LPIPS only where measured (None where an image was too small)."""
    out = {m: getattr(scores, m) for m in (*METRICS, "seconds")}
    out.update({m: getattr(scores, m) for m in PERCEPTUAL if getattr(scores, m) is not None})
    return out


def results_dict(evaluation: Evaluation, curve: Sequence[CurvePoint] | None = None, files: dict | None = None) -> dict:
    """Everything in the evaluation as JSON-ready data (see the module doc for `inf`)."""
    images = []
    for im in evaluation.images:
        entry = {
            "name": im.name,
            "source": im.source,
            "hr_size": list(im.hr_size),
            "lr_size": list(im.lr_size),
            "notes": im.notes,
            "scores": {name: _scores_dict(s) for name, s in im.scores.items()},
        }
        if im.crop is not None:
            entry["crop"] = dataclasses.asdict(im.crop)
        if files and im.name in files:
            entry["files"] = files[im.name]
        images.append(entry)
    data = {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "scale": evaluation.scale,
        "crop_border": evaluation.crop_border,
        "convention": evaluation.convention,
        "settings": evaluation.settings,
        "methods": [m.describe() for m in evaluation.methods],
        "mean": {name: _scores_dict(s) for name, s in evaluation.means().items()},
        "num_images": len(evaluation.images),
        "images": images,
    }
    if curve:
        data["interpolation_curve"] = [{"alpha": p.alpha, **_scores_dict(p.scores)} for p in curve]
    return _jsonable(data)


def write_json(path: str | os.PathLike, data: dict) -> Path:
    """Writes strict JSON (no NaN/Infinity tokens) atomically."""
    path = Path(path)
    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")
    return path


# --- Markdown -----------------------------------------------------------------------------------


def mean_table_markdown(evaluation: Evaluation) -> str:
    """The table of means: one row per method, best value per column in bold."""
    means = evaluation.means()
    cols = columns(evaluation)
    header = "| method | " + " | ".join(h for _, h, _ in cols) + " | s / image |"
    lines = [header, "|---|" + "---:|" * (len(cols) + 1)]
    for name, s in means.items():
        cells = []
        for metric, _, digits in cols:
            value = getattr(s, metric)
            text = format_value(value, digits)
            best = len(means) > 1 and value is not None and value == _best(means, metric)
            cells.append(f"**{text}**" if best else text)
        lines.append(f"| {_md(name)} | " + " | ".join(cells) + f" | {format_value(s.seconds, 3)} |")
    return "\n".join(lines)


def per_image_markdown(evaluation: Evaluation, metrics: Sequence[str] = ("psnr_y", "ssim_y")) -> str:
    """`metrics` per image and method (PSNR-Y / SSIM-Y by default), joined by " / "."""
    names = evaluation.method_names
    digits = {m: d for m, _, d in (*COLUMNS, *PERCEPTUAL_COLUMNS.values())}
    lines = ["| image | " + " | ".join(_md(n) for n in names) + " |", "|---|" + "---:|" * len(names)]
    for im in evaluation.images:
        cells = [" / ".join(format_value(getattr(im.scores[n], m), digits[m]) for m in metrics) for n in names]
        lines.append(f"| {_md(im.name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curve_markdown(curve: Sequence[CurvePoint]) -> str:
    lines = ["| alpha | " + " | ".join(h for _, h, _ in COLUMNS) + " |", "|---:|" + "---:|" * len(COLUMNS)]
    for p in curve:
        lines.append(
            f"| {p.alpha:g} | " + " | ".join(format_value(getattr(p.scores, m), d) for m, _, d in COLUMNS) + " |"
        )
    return "\n".join(lines)


def markdown_report(evaluation: Evaluation, curve: Sequence[CurvePoint] | None = None, title: str = "") -> str:
    """`results.md`: a heading, what was measured, the mean table, the per-image table (and the curve)."""
    n = len(evaluation.images)
    parts = [
        f"# {title or 'Evaluation'}",
        "",
        f"x{evaluation.scale}, {n} image{'s' if n != 1 else ''}. {evaluation.convention}",
        "",
        mean_table_markdown(evaluation),
        "",
        "## Per image (PSNR-Y dB / SSIM-Y)",
        "",
        per_image_markdown(evaluation),
    ]
    if evaluation.perceptual:
        headers = " / ".join(PERCEPTUAL_COLUMNS[m][1] for m in evaluation.perceptual)
        parts += ["", f"## Per image ({headers})", "", per_image_markdown(evaluation, evaluation.perceptual)]
    if curve:
        parts += ["", "## Network interpolation (mean over images)", "", curve_markdown(curve)]
    return "\n".join(parts) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|")


# --- pictures -----------------------------------------------------------------------------------


def safe_name(text: str) -> str:
    """A file-name-safe version of `text` (letters, digits, `.`, `-`, `_`)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._") or "image"
    return cleaned[:80]


def _label_font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def zoom_for(size: int) -> int:
    return max(1, round(DISPLAY_PX / max(size, 1)))


def side_by_side(panels: dict[str, np.ndarray], captions: dict[str, str]) -> np.ndarray:
    """All crops in a row, each enlarged by pixel repetition and labelled beneath: `[H, W, 3] uint8`.

    Captions of outputs give the whole image's PSNR-Y / SSIM-Y.
    """
    from PIL import Image, ImageDraw

    size = next(iter(panels.values())).shape[0]
    zoom = zoom_for(size)
    side, gap, label_h = size * zoom, 8, 44
    canvas = Image.new("RGB", (len(panels) * side + (len(panels) + 1) * gap, side + label_h + 2 * gap), "white")
    draw = ImageDraw.Draw(canvas)
    font, small = _label_font(15), _label_font(13)
    for i, (name, crop) in enumerate(panels.items()):
        x = gap + i * (side + gap)
        canvas.paste(Image.fromarray(np.repeat(np.repeat(crop, zoom, axis=0), zoom, axis=1)), (x, gap))
        draw.text((x, gap + side + 4), _fit(draw, name, font, side), fill=(20, 20, 20), font=font)
        draw.text((x, gap + side + 23), _fit(draw, captions.get(name, ""), small, side), fill=(90, 90, 90), font=small)
    return np.asarray(canvas)


def _fit(draw, text: str, font, width: int) -> str:
    while text and draw.textlength(text, font=font) > width:
        text = text[:-2] + "…" if len(text) > 2 else ""
    return text


def overview(hr: np.ndarray, crop, max_side: int = 320) -> np.ndarray:
    """A thumbnail of the HR image with the crop outlined in red."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(hr)
    factor = min(1.0, max_side / max(hr.shape[:2]))
    if factor < 1.0:
        image = image.resize((max(1, round(hr.shape[1] * factor)), max(1, round(hr.shape[0] * factor))), Image.BICUBIC)
    draw = ImageDraw.Draw(image)
    box = [crop.x * factor, crop.y * factor, (crop.x + crop.size) * factor - 1, (crop.y + crop.size) * factor - 1]
    draw.rectangle(box, outline=(255, 0, 0), width=2)
    return np.asarray(image)


def _captions(im: ImageResult) -> dict[str, str]:
    captions = {"LR": "input (nearest)", "HR": "ground truth"}
    for name, s in im.scores.items():
        captions[name] = f"Y {format_value(s.psnr_y, 2)} dB / {format_value(s.ssim_y, 4)}"
        for metric in PERCEPTUAL:
            if getattr(s, metric) is not None:
                _, header, digits = PERCEPTUAL_COLUMNS[metric]
                captions[name] += f", {header.split()[0]} {format_value(getattr(s, metric), digits)}"
    return captions


def write_image_files(out_dir: Path, im: ImageResult, index: int, hr: np.ndarray | None = None) -> dict:
    """Writes one image's crops, side-by-side picture and (given `hr`) overview; returns relative paths."""
    from PIL import Image

    if not im.panels:
        return {}
    folder = Path("images") / f"{index:03d}-{safe_name(im.name)}"
    (out_dir / folder).mkdir(parents=True, exist_ok=True)
    files = {"crops": {}}
    for k, (name, crop) in enumerate(im.panels.items()):
        rel = folder / f"{k:02d}-{safe_name(name)}.png"
        Image.fromarray(crop).save(out_dir / rel)
        files["crops"][name] = rel.as_posix()
    rel = folder / "side_by_side.png"
    Image.fromarray(side_by_side(im.panels, _captions(im))).save(out_dir / rel)
    files["side_by_side"] = rel.as_posix()
    if hr is not None and im.crop is not None:
        rel = folder / "overview.png"
        Image.fromarray(overview(hr, im.crop)).save(out_dir / rel)
        files["overview"] = rel.as_posix()
    return files


# --- HTML ---------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.best { font-weight: bold; }
.convention, .notes, .settings { color: #555; max-width: 70em; font-size: 0.9em; }
.crops { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-start; }
figure { margin: 0; }
figure img.crop { image-rendering: pixelated; display: block; border: 1px solid #ccc; }
figcaption { font-size: 0.85em; max-width: 260px; }
figcaption .value { color: #666; }
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _plain(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value)
    return "-" if value is None else str(value)


def _src(rel: str) -> str:
    return _e(urllib.parse.quote(rel))


def _html_table(rows: dict[str, Scores], key_header: str, seconds: bool = True,
                cols: Sequence[tuple[str, str, int]] = COLUMNS) -> str:
    best = {m: _best(rows, m) for m, _, _ in cols}
    head = "".join(f"<th>{_e(h)}</th>" for _, h, _ in cols) + ("<th>s / image</th>" if seconds else "")
    out = [f"<table><tr><th>{_e(key_header)}</th>{head}</tr>"]
    for name, s in rows.items():
        cells = []
        for metric, _, digits in cols:
            value = getattr(s, metric)
            cls = ' class="best"' if len(rows) > 1 and value is not None and value == best[metric] else ""
            cells.append(f"<td{cls}>{_e(format_value(getattr(s, metric), digits))}</td>")
        if seconds:
            cells.append(f"<td>{_e(format_value(s.seconds, 3))}</td>")
        out.append(f"<tr><td>{_e(name)}</td>{''.join(cells)}</tr>")
    out.append("</table>")
    return "\n".join(out)


def render_html(
    evaluation: Evaluation,
    files: dict[str, dict],
    curve: Sequence[CurvePoint] | None = None,
    curve_png: str | None = None,
    title: str = "",
) -> str:
    """The HTML report (static, no scripts; pictures referenced relative to the report)."""
    n = len(evaluation.images)
    settings = "".join(f"<li><b>{_e(k)}</b>: {_e(_plain(v))}</li>" for k, v in evaluation.settings.items())
    methods = "".join(
        f"<li><b>{_e(m.name)}</b>: {_e(' '.join(t for t in (m.kind, m.spec) if t != m.name))}</li>"
        for m in evaluation.methods
    )
    body = [
        f"<h1>{_e(title or 'Super-resolution evaluation')}</h1>",
        f"<p>x{evaluation.scale}, {n} image{'s' if n != 1 else ''}. Mean over images; best in bold.</p>",
        _html_table(evaluation.means(), "method", cols=columns(evaluation)),
        f'<p class="convention">{_e(evaluation.convention)}</p>',
        f'<ul class="settings">{methods}{settings}</ul>',
    ]
    if curve:
        body.append("<h2>Network interpolation: PSNR/SSIM against alpha (mean over images)</h2>")
        if curve_png:
            body.append(f'<img src="{_src(curve_png)}" alt="PSNR and SSIM against alpha" width="900" height="420">')
        body.append(_html_table({f"{p.alpha:g}": p.scores for p in curve}, "alpha", seconds=False))
    for im in evaluation.images:
        body.append(f"<h2>{_e(im.name)}</h2>")
        notes = "; ".join([f"HR {im.hr_size[0]}x{im.hr_size[1]}, LR {im.lr_size[0]}x{im.lr_size[1]}", *im.notes])
        body.append(f'<p class="notes">{_e(notes)}</p>')
        body.append(_html_table(im.scores, "method", cols=columns(evaluation)))
        image_files = files.get(im.name, {})
        if image_files.get("crops"):
            crop = im.crop
            body.append(
                f'<p class="notes">Crop {crop.size}x{crop.size} HR pixels at (y={crop.y}, x={crop.x}), '
                f"shown x{zoom_for(crop.size)} without smoothing, where the outputs differ most.</p>"
            )
            captions = _captions(im)
            figures = []
            side = crop.size * zoom_for(crop.size)
            for name, rel in image_files["crops"].items():
                figures.append(
                    f'<figure><img class="crop" src="{_src(rel)}" alt="{_e(name)}" width="{side}" height="{side}">'
                    f'<figcaption>{_e(name)}<br><span class="value">{_e(captions.get(name, ""))}</span>'
                    "</figcaption></figure>"
                )
            if image_files.get("overview"):
                figures.append(
                    f'<figure><img src="{_src(image_files["overview"])}" alt="where the crop lies">'
                    "<figcaption>where the crop lies</figcaption></figure>"
                )
            body.append(f'<div class="crops">{"".join(figures)}</div>')
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_e(title or 'Super-resolution evaluation')}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


# --- all of it ----------------------------------------------------------------------------------


def write_report(
    out_dir: str | os.PathLike,
    evaluation: Evaluation,
    *,
    files: dict[str, dict] | None = None,
    curve: Sequence[CurvePoint] | None = None,
    title: str = "",
    html_report: bool = True,
) -> ReportFiles:
    """Writes results.json, results.md, report.html (and curve.png) into `out_dir`.

    Args:
      files: per image name, the pictures already written by `write_image_files` (the CLI writes
        them while evaluating so HR images need not be kept); None: written here from the
        panels (without overviews).
      curve: interpolation curve points, if any.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if files is None:
        files = {im.name: write_image_files(out_dir, im, i) for i, im in enumerate(evaluation.images)}
    curve_png = None
    if curve:
        curve_png = plot_curve_png(curve, out_dir / "curve.png", title="PSNR / SSIM against interpolation alpha")
    results_json = write_json(out_dir / "results.json", results_dict(evaluation, curve, files))
    markdown = out_dir / "results.md"
    markdown.write_text(markdown_report(evaluation, curve, title), encoding="utf-8")
    html_path = None
    if html_report:
        html_path = out_dir / "report.html"
        html_path.write_text(
            render_html(evaluation, files, curve, "curve.png" if curve_png else None, title), encoding="utf-8"
        )
    side = [out_dir / f["side_by_side"] for f in files.values() if f.get("side_by_side")]
    return ReportFiles(results_json, markdown, html_path, side, curve_png)
