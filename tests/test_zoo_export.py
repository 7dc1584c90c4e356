"""The zoo's architectures export and serve like the others; SPAN x4 scores the same through every path."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from sr_tf.export import ExportConfig, export_savedmodel
from sr_tf.models import SPAN, CUNet, UpConv7, UpCunet

TINY = {
    "span": lambda: SPAN(feature_channels=4, upscale=3),
    "upcunet_x2": lambda: UpCunet(2, num_feat=4),
    "upcunet_x3_nose": lambda: UpCunet(3, se=False, num_feat=4),
    "upcunet_x4": lambda: UpCunet(4, num_feat=4),
    "cunet": lambda: CUNet(num_feat=4),
    "upconv7": lambda: UpConv7(num_feat=2),
}


def _expected(model, pixels):
    """The Keras model on [0, 1] inputs, scaled to [0, 255], clipped and rounded (the export's contract)."""
    return np.round(np.clip(model(pixels / 255.0).numpy() * 255.0, 0, 255))


@pytest.mark.parametrize("name", sorted(TINY))
def test_savedmodel_call_equals_the_keras_model(name, tmp_path):
    keras.utils.set_random_seed(5)
    model = TINY[name]()
    pixels = np.random.default_rng(0).integers(0, 256, (2, 9, 7, 3)).astype(np.float32)  # odd sizes
    want = _expected(model, pixels)
    path = export_savedmodel(model, tmp_path / name / "1", ExportConfig(tile_size=0, warmup_size=8))
    got = tf.saved_model.load(str(path)).signatures["serving_default"](images=tf.constant(pixels))
    got = next(iter(got.values())).numpy()
    s = model.scale
    assert got.shape == (2, 9 * s, 7 * s, 3)
    diff = np.abs(got - want)
    assert diff.max() <= 1 and np.mean(diff > 0) < 1e-3  # graph vs eager float32 may cross a .5 boundary


def test_tiled_export_of_an_unpadded_unet_runs_every_tile(tmp_path):
    """Tiles are padded inside the model too: a 20x13 image in 8-pixel tiles comes out whole."""
    model = UpCunet(2, num_feat=4)
    model(np.zeros((1, 4, 4, 3), np.float32))
    path = export_savedmodel(model, tmp_path / "t" / "1", ExportConfig(tile_size=8, tile_pad=4, warmup_size=8))
    pixels = np.random.default_rng(1).integers(0, 256, (1, 20, 13, 3)).astype(np.float32)
    out = tf.saved_model.load(str(path)).signatures["serving_default"](images=tf.constant(pixels))
    assert next(iter(out.values())).shape == (1, 40, 26, 3)


# --- acceptance: SPAN x4 with its published weights, through sr-tf evaluate, the SavedModel and the server ---


@pytest.fixture(scope="module")
def span_x4(tmp_path_factory):
    from sr_tf.pretrained import ncnn_files
    from sr_tf.runtime.catalogue import load_pretrained

    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SR_TF_CACHE_DIR", str(cache))
        try:
            ncnn_files("spanx4-ch48")
        except FileNotFoundError as e:
            pytest.skip(str(e))
        model = load_pretrained("spanx4-ch48")
    return model, cache


@pytest.fixture(scope="module")
def hr_photo(tmp_path_factory):
    """A 48x48 crop of a real photo (LR 12x12), written as the HR image for `sr-tf evaluate`."""
    from sr_tf.imageio import write_image
    from tests.pretrained.photos import crops

    hr = np.round(crops(48)[0][:, :48] * 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("hr") / "ladybird.png"
    write_image(path, hr)
    return path, hr


def test_span_x4_scores_the_same_through_evaluate_savedmodel_and_server(span_x4, hr_photo, tmp_path, monkeypatch):
    from sr_tf.cli import main
    from sr_tf.evaluation import data, runner
    from sr_tf.serving.clients import RestClient
    from sr_tf.serving.models import ModelConfig
    from sr_tf.serving.server import ModelServer, ServerConfig

    model, cache = span_x4
    monkeypatch.setenv("SR_TF_CACHE_DIR", str(cache))
    path, hr = hr_photo
    out = tmp_path / "report"
    assert main(["evaluate", "--models", "spanx4-ch48", "--data", str(path), "--scale", "4", "--out", str(out),
                 "--crop-size", "0", "--no-html", "--no-progress", "--tile", "0"]) == 0
    reported = json.loads((out / "results.json").read_text())["images"][0]["scores"]["spanx4-ch48"]

    lr = data.degrade(hr, 4)  # the LR evaluate made (MATLAB convention)
    export_dir = export_savedmodel(model, tmp_path / "models" / "spanx4" / "1", ExportConfig(tile_size=0, warmup_size=8))
    signature = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    from_savedmodel = next(iter(signature(images=tf.constant(lr[None].astype(np.float32))).values())).numpy()[0]

    server = ModelServer([ModelConfig("spanx4", str(export_dir.parent))],
                         ServerConfig(rest_port=0, grpc_port=0, poll_seconds=0, grace_seconds=5)).start()
    try:
        from_server = np.asarray(RestClient(f"http://127.0.0.1:{server.rest_port}", "spanx4").predict(lr[None]))[0]
    finally:
        server.stop()
    np.testing.assert_array_equal(from_server, from_savedmodel)  # the server runs the SavedModel
    for sr in (from_savedmodel, from_server):
        scores = runner.score(sr.astype(np.uint8), hr, 4)
        for metric, digits in (("psnr_y", 4), ("ssim_y", 6), ("psnr_rgb", 4), ("ssim_rgb", 6)):
            assert getattr(scores, metric) == pytest.approx(reported[metric], abs=10**-digits), metric
