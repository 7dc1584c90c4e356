"""The one tiler: tiled output equals the untiled output for every tile and context size.

The model here is nearest x2 (each output pixel depends on one input pixel), so any `tile_pad`
is enough context and the blend alone decides the result; a 3x3 conv model checks that context of
at least its radius gives the untiled result too. Tiny tiles and pads (cores of one pixel, no
blend band) are where a blend whose weights do not sum to one shows.
"""

import numpy as np
import pytest
import tensorflow as tf

from sr_tf.tiling import upscale_tiled


def _nearest_x2(t):
    return tf.repeat(tf.repeat(t, 2, axis=1), 2, axis=2)


@pytest.mark.parametrize("height,width", [(5, 6), (7, 3), (9, 10)])
def test_tiles_of_any_size_give_the_untiled_result(height, width):
    x = np.random.default_rng(height).random((1, height, width, 3)).astype(np.float32)
    whole = _nearest_x2(x).numpy()
    for tile in (1, 2, 3, 4, 5):
        for tile_pad in (0, 1, 2, 3, 16):
            out = upscale_tiled(x, _nearest_x2, 2, tile, tile_pad).numpy()
            np.testing.assert_allclose(out, whole, atol=1e-6, err_msg=f"tile={tile} tile_pad={tile_pad}")


def test_the_graph_tiler_gives_the_eager_pixels():
    kernel = tf.constant(np.random.default_rng(1).random((3, 3, 3, 3)).astype(np.float32) / 9)

    def conv_x2(t):
        return _nearest_x2(tf.nn.conv2d(t, kernel, 1, "SAME"))

    x = np.random.default_rng(2).random((1, 11, 7, 3)).astype(np.float32)
    traced = tf.function(lambda t: upscale_tiled(t, conv_x2, 2, 4, 2),
                         input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
    eager = upscale_tiled(x, conv_x2, 2, 4, 2).numpy()
    np.testing.assert_allclose(traced(x).numpy(), eager, atol=1e-6)
    # Context of at least the conv's radius reproduces the untiled output away from nothing.
    np.testing.assert_allclose(eager, conv_x2(x).numpy(), atol=1e-5)


def test_every_library_default_tile_pad_is_the_one_constant():
    """One default each: a library path with its own tile context gives other pixels than the CLI's."""
    import dataclasses
    import inspect

    from sr_tf.batch.config import BatchConfig
    from sr_tf.batch.predictor import load_predictor
    from sr_tf.defaults import EVALUATE_TILE, TILE, TILE_PAD
    from sr_tf.evaluation.curves import alpha_curve
    from sr_tf.evaluation.methods import load_methods, model_method
    from sr_tf.evaluation.workflow import EvaluateConfig
    from sr_tf.export import ExportConfig
    from sr_tf.inference import Upscaler, upscale_image
    from sr_tf.video.config import VideoConfig
    from sr_tf.video.segment import FrameUpscaler

    functions = [Upscaler.__call__, Upscaler.upscale_batch, upscale_image, load_predictor, model_method,
                 load_methods, alpha_curve, FrameUpscaler.upscale_batch]
    pads = {f.__qualname__: inspect.signature(f).parameters["tile_pad"].default for f in functions}
    for config in (BatchConfig, EvaluateConfig, ExportConfig, VideoConfig):
        pads[config.__name__] = {f.name: f.default for f in dataclasses.fields(config)}["tile_pad"]
    assert pads == dict.fromkeys(pads, TILE_PAD)
    assert BatchConfig.tile == TILE and EvaluateConfig.tile == EVALUATE_TILE
