"""The web page of `sr-tf serve`, in a real headless Chromium driven over WebDriver."""

from __future__ import annotations

import re

import numpy as np
import pytest
import requests
from PIL import Image
from webdriver import CHROMEDRIVER, CHROMIUM, Browser

from sr_tf.export import ExportConfig, export_savedmodel
from sr_tf.models import SRVGGNetCompact
from sr_tf.serving.models import ModelConfig
from sr_tf.serving.rest import VertexConfig
from sr_tf.serving.server import ModelServer, ServerConfig
from sr_tf.serving.ui import STATIC

needs_browser = pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                                   reason="Debian's chromium and chromium-driver are not installed")


@pytest.fixture(scope="module")
def x4_model(tmp_path_factory):
    """BASE/tiny4/1: a tiny x4 SRVGGNetCompact, exported like any model."""
    import keras

    keras.utils.set_random_seed(4)
    model = SRVGGNetCompact(num_feat=8, num_conv=1, upscale=4)
    model(np.zeros((1, 4, 4, 3), np.float32))
    base = tmp_path_factory.mktemp("models") / "tiny4"
    export_savedmodel(model, base / "1", ExportConfig(tile_size=0, warmup=False))
    return base


def _server(base, **settings) -> ModelServer:
    config = ServerConfig(**{"rest_port": 0, "grpc_port": None, "poll_seconds": 0, "grace_seconds": 2, "ui": True,
                             **settings})
    return ModelServer([ModelConfig("tiny4", str(base))], config).start()


@pytest.fixture(scope="module")
def page_url(x4_model):
    server = _server(x4_model)
    yield f"http://127.0.0.1:{server.rest_port}/"
    server.stop()


def _photo(path, width=40, height=28):
    """A small photo-like JPEG: smooth colour gradients with grain."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([255 * x / width, 255 * y / height, 128 + 100 * np.sin(x / 5 + y / 7)], axis=-1)
    rgb += np.random.default_rng(0).normal(0, 6, rgb.shape)
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path, quality=92)
    return path


MODELS_READY = ("const m = document.getElementById('model'), v = document.getElementById('version');"
                "return !m.disabled && !v.disabled && m.value === 'tiny4';")
RESULT_SIZE = ("const r = document.getElementById('result');"
               "return !document.getElementById('view').hidden && r.complete && r.naturalWidth"
               " ? [r.naturalWidth, r.naturalHeight] : null;")
ERROR_TEXT = "const e = document.getElementById('error'); return e.hidden ? null : e.textContent;"


@needs_browser
def test_page_upscales_an_uploaded_photo_4x(page_url, tmp_path):
    photo = _photo(tmp_path / "photo.jpg")
    with Browser(tmp_path / "profile") as browser:
        browser.get(page_url)
        browser.wait_for(MODELS_READY, timeout=60)
        browser.upload("#file", photo)
        assert browser.wait_for(RESULT_SIZE) == [160, 112]  # 4 x (40, 28)
        assert browser.script(ERROR_TEXT) is None
        assert re.fullmatch(r"\d+\.\d\d s", browser.script("return document.getElementById('time').textContent;"))
        link = browser.script("const a = document.getElementById('download'); return [a.href, a.download];")
        assert link[0].startswith("blob:") and link[1] == "photo_tiny4.png"
        assert "40×28 → 160×112 (×4)" in browser.script("return document.getElementById('sizes').textContent;")

        # The slider uncovers the input on its left; zoom shows result pixels at 4x.
        browser.script("const s = document.getElementById('split'); s.value = 20;"
                       "s.dispatchEvent(new Event('input'));")
        assert "80%" in browser.script("return document.getElementById('before').style.clipPath;")
        browser.script("const z = document.getElementById('zoom'); z.value = '4';"
                       "z.dispatchEvent(new Event('change'));")
        assert browser.script("return document.getElementById('stage').getBoundingClientRect().width;") == 640
        browser.script("const z = document.getElementById('zoom'); z.value = 'fit';"
                       "z.dispatchEvent(new Event('change'));")
        browser.screenshot(tmp_path / "page.png")
    shot = np.asarray(Image.open(tmp_path / "page.png").convert("RGB"))
    assert shot.shape[1] == 1280
    colourful = shot[(shot.max(axis=-1).astype(int) - shot.min(axis=-1)) > 60]
    assert len(colourful) > 20_000  # the result and the input are on screen, not a blank page


@needs_browser
def test_page_shows_the_servers_errors_in_plain_words(page_url, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not a picture")
    with Browser(tmp_path / "profile") as browser:
        browser.get(page_url)
        browser.wait_for(MODELS_READY, timeout=60)
        browser.upload("#file", broken)
        message = browser.wait_for(ERROR_TEXT, timeout=60)
    assert message.startswith("The server could not use this image: Invalid image"), message
    assert "not an image" in message
    assert len(message) < 400 and "Traceback" not in message


def test_page_routes_and_no_outside_hosts(page_url):
    page = requests.get(page_url, timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]  # the browser itself refuses other hosts
    assert requests.get(page_url + "ui/models", timeout=10).json() == {"models": ["tiny4"]}
    for name in ("app.js", "style.css"):
        assert requests.get(page_url + "ui/" + name, timeout=10).status_code == 200
    assert requests.get(page_url + "ui/missing.js", timeout=10).status_code == 404
    for path in STATIC.iterdir():  # nothing is fetched from another host (users behind firewalls)
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", path.read_text()), path.name


def test_page_is_off_with_ui_false_and_in_vertex_mode(x4_model):
    for settings in ({"ui": False}, {"vertex": VertexConfig("tiny4")}):
        server = _server(x4_model, **settings)
        try:
            url = f"http://127.0.0.1:{server.rest_port}"
            assert requests.get(url + "/", timeout=10).status_code == 404, settings
            assert requests.get(url + "/ui/models", timeout=10).status_code == 404, settings
        finally:
            server.stop()



RESULT_PIXELS = ("const r = document.getElementById('result'), c = document.createElement('canvas');"
                 "c.width = r.naturalWidth; c.height = r.naturalHeight; const g = c.getContext('2d');"
                 "g.drawImage(r, 0, 0); return Array.from(g.getImageData(0, 0, c.width, c.height).data);")


@needs_browser
def test_page_slider_sets_a_blend_exports_strength(tmp_path):
    """A blend export (`sr-tf export --blend A B`) gets a denoise slider over its strength range; the
    page sends the slider's value to `encoded_image_blended` and upscales again when it moves."""
    import base64
    import io

    import keras

    models = []
    for seed in (5, 6):
        keras.utils.set_random_seed(seed)
        model = SRVGGNetCompact(num_feat=8, num_conv=1, upscale=4)
        model(np.zeros((1, 4, 4, 3), np.float32))
        rng = np.random.default_rng(seed)  # weights that make the two results differ visibly
        model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
        models.append(model)
    from sr_tf.models.interpolate import WeightBlend

    base = tmp_path / "models" / "knob"
    export_savedmodel(WeightBlend(models, default=0.25), base / "1", ExportConfig(tile_size=0, warmup=False))
    server = ModelServer([ModelConfig("knob", str(base))], ServerConfig(rest_port=0, grpc_port=None, poll_seconds=0,
                                                                        grace_seconds=2, ui=True)).start()
    url = f"http://127.0.0.1:{server.rest_port}/"
    photo = _photo(tmp_path / "photo.png")

    def reference(strength):  # the REST API's columnar format with the scalar input, as any client sends it
        body = {"signature_name": "encoded_image_blended",
                "inputs": {"image_bytes": [{"b64": base64.b64encode(photo.read_bytes()).decode()}],
                           "strength": strength}}
        answer = requests.post(url + "v1/models/knob:predict", json=body, timeout=60)
        assert answer.status_code == 200, answer.text
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(answer.json()["outputs"][0]["b64"]))).convert("RGB"))

    try:
        assert requests.get(url + "ui/models", timeout=10).json() == {"models": ["knob"], "strength": {"knob": [0.0, 1.0]}}
        with Browser(tmp_path / "profile") as browser:
            browser.get(url)
            browser.wait_for("return !document.getElementById('strength-box').hidden;", timeout=60)
            slider = browser.script("const s = document.getElementById('strength'); return [s.min, s.max, s.value];")
            assert slider == ["0", "1", "0.25"]  # the range from ui/models, the SignatureDef's default
            assert browser.script("return document.getElementById('signature-name').textContent;") == \
                "encoded_image_blended"
            browser.script("const s = document.getElementById('strength'); s.value = 1;"
                           "s.dispatchEvent(new Event('change'));")
            browser.upload("#file", photo)
            browser.wait_for("return document.getElementById('status').textContent.includes('at strength 1 ');")
            at_one = np.asarray(browser.script(RESULT_PIXELS), np.uint8).reshape(112, 160, 4)[..., :3]
            browser.script("const s = document.getElementById('strength'); s.value = 0;"
                           "s.dispatchEvent(new Event('change'));")  # upscales the same image again
            browser.wait_for("return document.getElementById('status').textContent.includes('at strength 0 ');")
            at_zero = np.asarray(browser.script(RESULT_PIXELS), np.uint8).reshape(112, 160, 4)[..., :3]
        np.testing.assert_array_equal(at_one, reference(1.0))
        np.testing.assert_array_equal(at_zero, reference(0.0))
        assert not np.array_equal(at_one, at_zero)
    finally:
        server.stop()
