"""Batch prediction of an SRMD model (a signature input with a default): the default fills it in."""

import numpy as np
import tensorflow as tf

from sr_tf.batch.predictor import load_predictor
from sr_tf.export import ExportConfig, export_savedmodel
from sr_tf.models import SRMD


def test_srmd_savedmodel_and_keras_file_run_at_their_default_noise_level(tmp_path):
    model = SRMD(scale=2, num_feat=6, num_conv=2, noise_level=20.0)
    model(np.zeros((1, 4, 4, 3), np.float32))
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    model.save(tmp_path / "srmd.keras")
    version = export_savedmodel(model, tmp_path / "m" / "1", ExportConfig(tile_size=0, warmup=False))
    pixels = np.round(rng.uniform(0, 255, (1, 5, 6, 3))).astype(np.float32)
    expected = np.clip(np.round(model(pixels / 255.0).numpy() * 255.0), 0, 255)
    png = tf.io.encode_png(pixels[0].astype(np.uint8)).numpy()
    for spec in (str(version), str(tmp_path / "srmd.keras")):
        predictor = load_predictor(spec, tile=0)
        np.testing.assert_allclose(predictor(pixels), expected, atol=1, err_msg=spec)
        decoded = tf.io.decode_png(predictor.encoded(png)).numpy().astype(np.float32)
        np.testing.assert_allclose(decoded, expected[0], atol=1, err_msg=spec)
