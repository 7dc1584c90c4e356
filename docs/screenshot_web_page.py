"""Makes docs/web_page.png: `sr-tf serve`'s page after upscaling a photo crop with a catalogue model.

    python3 docs/screenshot_web_page.py            # needs Debian's chromium and chromium-driver
    python3 docs/screenshot_web_page.py --model realcugan-x4-no-denoise --denoise 1.5   # with the denoise slider

Exports the model to a temporary folder, serves it on a free port, drives the page in headless
Chromium (tests/serving/webdriver.py) as a user would (choose the file, wait for the result) and
saves a palette PNG small enough for the README.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "serving"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="realesr-animevideov3-x4")
    parser.add_argument("--photo", default=str(REPO.parent / "shared" / "data" / "photos" / "LadyBird.jpg"))
    parser.add_argument("--downscale", type=int, default=4,
                        help="shrink the photo by this factor first (bicubic), so the input is low-resolution")
    parser.add_argument("--crop", type=int, nargs=4, default=(370, 145, 530, 265), metavar=("L", "T", "R", "B"),
                        help="crop box in pixels of the shrunk photo (default: %(default)s)")
    parser.add_argument("--denoise", type=float, default=None,
                        help="export the model's denoise family (sr-tf export --denoise) with this default strength")
    parser.add_argument("--out", default=str(REPO / "docs" / "web_page.png"))
    args = parser.parse_args()

    from webdriver import Browser

    from sr_tf.export import ExportConfig, export_savedmodel
    from sr_tf.runtime import load_generator
    from sr_tf.runtime.blends import load_denoise_family
    from sr_tf.serving.models import ModelConfig
    from sr_tf.serving.server import ModelServer, ServerConfig

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = load_generator(args.model) if args.denoise is None else load_denoise_family(args.model, args.denoise)
        export_savedmodel(model, tmp / args.model / "1", ExportConfig())
        crop = tmp / f"{Path(args.photo).stem}_crop.png"
        photo = Image.open(args.photo).convert("RGB")
        photo = photo.resize((photo.width // args.downscale, photo.height // args.downscale), Image.Resampling.BICUBIC)
        photo.crop(tuple(args.crop)).save(crop)
        server = ModelServer([ModelConfig(args.model, str(tmp / args.model))],
                             ServerConfig(rest_port=0, grpc_port=None, poll_seconds=0, ui=True)).start()
        try:
            with Browser(tmp / "profile", width=1100, height=1000, timeout=300) as browser:
                browser.get(f"http://127.0.0.1:{server.rest_port}/")
                browser.wait_for("return !document.getElementById('version').disabled;", timeout=120)
                browser.upload("#file", crop)
                size = browser.wait_for("const r = document.getElementById('result'); return "
                                        "!document.getElementById('view').hidden && r.naturalWidth;", timeout=600)
                browser.script("const s = document.getElementById('split'); s.value = 45;"
                               "s.dispatchEvent(new Event('input')); window.scrollTo(0, 0);")
                shot = tmp / "shot.png"
                browser.screenshot(shot)
        finally:
            server.stop()
        image = Image.open(shot).convert("RGB")
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(
            args.out, optimize=True)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size // 1024} KB); result {size} px wide")


if __name__ == "__main__":
    main()
