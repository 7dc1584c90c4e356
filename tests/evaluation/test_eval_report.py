import json
import shutil
import subprocess

import numpy as np
import pytest
from eval_helpers import colourful
from PIL import Image

from sr_tf.evaluation import data, methods, report, runner
from sr_tf.evaluation.curves import CurvePoint

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _evaluation(names=("a", "b"), scale=2):
    pairs = []
    for i, name in enumerate(names):
        hr = colourful(48, 64, seed=i)
        pairs.append(data.EvalPair(name, hr, data.degrade(hr, scale), f"{name}.png", ["a note"]))
    table = {p.lr.tobytes(): p.hr for p in pairs}
    def truth(lr):  # the HR image itself (PSNR +inf); zeros for the warm-up input
        return table.get(lr.tobytes(), np.zeros((lr.shape[0] * scale, lr.shape[1] * scale, 3), np.uint8))

    oracle = methods.Method("oracle", "model", "oracle", scale, truth)

    def dark(lr):
        return (methods.bicubic_upscale(lr, scale) // 2).astype(np.uint8)

    darker = methods.Method("darker", "file", "models/darker.keras", scale, dark)
    return pairs, runner.evaluate(pairs, [methods.bicubic_method(scale), oracle, darker], crop_size=16, progress=False)


def _write(tmp_path, evaluation, pairs, **kwargs):
    files = {
        im.name: report.write_image_files(tmp_path, im, i, pair.hr)
        for i, (im, pair) in enumerate(zip(evaluation.images, pairs, strict=True))
    }
    return report.write_report(tmp_path, evaluation, files=files, **kwargs)


def test_results_json_is_strict_and_reports_inf(tmp_path):
    pairs, evaluation = _evaluation()
    curve = [CurvePoint(0.0, evaluation.means()["bicubic"]), CurvePoint(1.0, evaluation.means()["darker"])]
    written = _write(tmp_path, evaluation, pairs, curve=curve)

    def no_constants(name):
        raise AssertionError(f"non-standard JSON constant {name}")

    loaded = json.loads(written.results_json.read_text(), parse_constant=no_constants)
    assert loaded["scale"] == 2 and loaded["crop_border"] == 2 and loaded["num_images"] == 2
    assert "rgb2ycbcr" in loaded["convention"] and "crop = scale" in loaded["convention"]
    assert loaded["mean"]["oracle"]["psnr_y"] == "inf"
    assert loaded["images"][0]["scores"]["oracle"]["psnr_rgb"] == "inf"
    bicubic = loaded["images"][1]["scores"]["bicubic"]["psnr_y"]
    assert bicubic == pytest.approx(evaluation.images[1].scores["bicubic"].psnr_y)
    assert loaded["images"][0]["notes"] == ["a note"]
    assert [p["alpha"] for p in loaded["interpolation_curve"]] == [0.0, 1.0]
    crop = loaded["images"][0]["crop"]
    assert set(crop) == {"y", "x", "size"} and crop["size"] == 16
    for rel in loaded["images"][0]["files"]["crops"].values():
        assert (tmp_path / rel).is_file()
    assert written.curve_png is not None and written.curve_png.is_file()


def test_markdown_tables(tmp_path):
    pairs, evaluation = _evaluation()
    text = _write(tmp_path, evaluation, pairs).markdown.read_text()
    assert "| method | PSNR-Y (dB) | SSIM-Y | PSNR-RGB (dB) | SSIM-RGB | s / image |" in text
    oracle_row = next(line for line in text.splitlines() if line.startswith("| oracle |"))
    assert "**inf**" in oracle_row  # best, and infinite
    darker = evaluation.means()["darker"]
    assert f"| darker | {darker.psnr_y:.2f} |" in text
    assert "| a | " in text and "inf / 1.0000" in text


def test_side_by_side_picture_has_every_crop(tmp_path):
    pairs, evaluation = _evaluation(names=("a",))
    written = _write(tmp_path, evaluation, pairs)
    (path,) = written.side_by_side
    image = np.asarray(Image.open(path).convert("RGB"))
    panels = evaluation.images[0].panels
    zoom = report.zoom_for(16)
    assert image.shape[1] >= len(panels) * 16 * zoom
    # The HR crop, enlarged, appears in the picture as it is (last panel).
    hr = np.repeat(np.repeat(panels["HR"], zoom, axis=0), zoom, axis=1)
    gap, side = 8, 16 * zoom
    x = gap + (len(panels) - 1) * (side + gap)
    np.testing.assert_array_equal(image[gap : gap + side, x : x + side], hr)


def test_html_escapes_user_text(tmp_path):
    pairs, evaluation = _evaluation(names=("<b>x</b>",))
    html = _write(tmp_path, evaluation, pairs).html.read_text()
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert html.count('<img class="crop"') == 5  # LR, bicubic, oracle, darker, HR


def _screenshot(html_path, png_path, profile):
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}", "--hide-scrollbars",
        "--window-size=1400,2400", f"--screenshot={png_path}", html_path.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert png_path.is_file(), f"chromium wrote no screenshot: {result.stderr[-2000:]}"
    return np.asarray(Image.open(png_path).convert("RGB")).astype(int)


def _image_pixels(shot):
    """Pixels of strong colour: the page itself is only black, grey and white."""
    colourful_mask = (shot.max(axis=-1) - shot.min(axis=-1)) > 80
    return shot[colourful_mask]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_html_report_shows_images_in_a_browser(tmp_path):
    pairs, evaluation = _evaluation()
    out = tmp_path / "report"
    written = _write(out, evaluation, pairs)
    shot = _screenshot(written.html, tmp_path / "shot.png", tmp_path / "profile")
    pixels = _image_pixels(shot)
    # The first image's crops alone cover 5 x 128 x 128 pixels on screen, mostly saturated colour.
    assert len(pixels) > 20000, len(pixels)
    assert len(np.unique(pixels, axis=0)) > 500  # not a uniform block: real picture content

    # Control: the same page without its pictures shows (almost) no colour.
    shutil.move(out / "images", tmp_path / "moved")
    blank = _screenshot(written.html, tmp_path / "blank.png", tmp_path / "profile2")
    assert len(_image_pixels(blank)) < 2000
