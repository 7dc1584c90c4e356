"""The model side of a batch job: load once, run `[N, H, W, 3]` pixel batches, map images to rows.

Every model kind runs through the same graph as TF Serving: a SavedModel's `serving_default`
signature as exported by `sr_tf.export`, or, for a `.keras` file or catalogue name, the
`sr_tf.export.SRServingModule` that the export would have written. So batch outputs are the
numbers the embedded server's `:predict` returns for the same pixels.
"""

from __future__ import annotations

import numpy as np

from sr_tf.defaults import TILE, TILE_PAD


class Predictor:
    """Runs `[N, H, W, 3] float32` pixels in [0, 255] -> `[N, sH, sW, 3] float32` whole numbers in [0, 255];
    and, for 16-bit images, encoded PNG -> PNG through the `encoded_image` graph (full 16-bit precision).

    Args:
      fn: a callable taking `images=` (a tf.Tensor) and returning `{"upscaled": tf.Tensor}`.
      description: what was loaded (for messages).
      encoded_fn: a callable taking `image_bytes=` (`[N]` strings) and returning `{"upscaled_bytes": ...}`.
    """

    def __init__(self, fn, description: str, encoded_fn=None):
        self._fn = fn
        self._encoded_fn = encoded_fn
        self.description = description

    def encoded(self, data: bytes) -> bytes:
        """One encoded image (PNG, 16-bit kept) -> the upscaled PNG, as the `encoded_image` signature."""
        import tensorflow as tf

        from sr_tf.export import BYTES_OUTPUT, ENCODED_SIGNATURE

        if self._encoded_fn is None:
            raise ValueError(f"{self.description} has no {ENCODED_SIGNATURE!r} signature, which 16-bit images need "
                             "(re-export it with `sr-tf export`)")
        return self._encoded_fn(image_bytes=tf.constant([data]))[BYTES_OUTPUT].numpy()[0]

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        from sr_tf.export import PIXELS_OUTPUT

        if pixels.ndim != 4 or pixels.shape[-1] != 3:
            raise ValueError(f"Predictor expects [N, H, W, 3] pixels. Received: shape={pixels.shape}")
        out = self._fn(images=tf.constant(pixels, tf.float32))
        return out[PIXELS_OUTPUT].numpy()


def load_predictor(spec: str, tile: int = TILE, tile_pad: int = TILE_PAD, backend: str = "tf",
                   precision: str = "float32", color_fix: str = "none") -> Predictor:
    """A predictor for `--model` (any spec `sr_tf.runtime.model_spec` takes).

    `tile` / `tile_pad`, `backend`, `precision` and `color_fix` apply to models that are not
    SavedModels; a SavedModel tiles as exported, runs in TensorFlow in its exported precision
    and has the colour fix it was exported with.

    Raises:
      ValueError: the SavedModel has no `serving_default` signature taking `images`, or a
        backend/precision was asked of a SavedModel.
      FileNotFoundError: a path that does not exist.
    """
    from sr_tf.backends import cast_model
    from sr_tf.export import (
        DEFAULT_SIGNATURE,
        ENCODED_SIGNATURE,
        PIXELS_INPUT,
        ExportConfig,
        SRServingModule,
    )
    from sr_tf.models import model_scale
    from sr_tf.runtime import load_generator, model_spec
    from sr_tf.runtime.savedmodels import load_savedmodel, signature_defaults

    parsed = model_spec(spec)
    if parsed.kind == "savedmodel":
        if color_fix != "none":
            raise ValueError("A SavedModel has the colour fix it was exported with (`color_fix` of the "
                             f"export); `color_fix` applies to .keras files, checkpoints and catalogue models. "
                             f"Received: color_fix={color_fix!r}")
        if (backend, precision) != ("tf", "float32"):
            raise ValueError("A SavedModel runs in TensorFlow in the precision it was exported with "
                             "(`precision` of the export); `backend` and `precision` apply to .keras files, "
                             f"checkpoints and catalogue models. Received: backend={backend!r}, precision={precision!r}")
        loaded = load_savedmodel(parsed.location)
        fn = loaded.signatures.get(DEFAULT_SIGNATURE)
        inputs = fn.structured_input_signature[1] if fn is not None else {}
        if fn is None or PIXELS_INPUT not in inputs:
            raise ValueError(
                f"The SavedModel's {DEFAULT_SIGNATURE!r} signature must take {PIXELS_INPUT!r} "
                f"(as `sr-tf export` writes it). Received: model={spec!r}"
            )
        encoded = loaded.signatures.get(ENCODED_SIGNATURE)
        # Python's loaded signatures want every input: inputs with a SignatureDef default get it
        # (SRMD's noise_level), as TF Serving would fill it in.
        defaults = signature_defaults(parsed.location)
        fn, encoded = (_with_defaults(f, defaults.get(k)) for f, k in ((fn, DEFAULT_SIGNATURE), (encoded, ENCODED_SIGNATURE)))
        predictor = Predictor(fn, f"SavedModel {spec}", encoded)
        predictor.keep_alive = loaded  # the signature's variables live as long as `loaded`
        return predictor
    model = load_generator(parsed)
    if backend != "tf":
        return _upscaler_predictor(model, spec, tile, tile_pad, backend, precision, color_fix)
    module = SRServingModule(cast_model(model, precision), model_scale(model),
                             ExportConfig(tile_size=tile, tile_pad=tile_pad, warmup=False, color_fix=color_fix))
    # the tf.functions (not concrete functions): they fill in a default noise_level (SRMD) when left out
    predictor = Predictor(module.pixels, f"model {spec}", module.encoded)
    predictor.keep_alive = module
    return predictor


def _with_defaults(fn, defaults: dict | None):
    """`fn` with `defaults` (`{input: array}`) passed unless the call gives them."""
    if fn is None or not defaults:
        return fn
    import tensorflow as tf

    def call(**inputs):
        return fn(**{**{k: tf.constant(v) for k, v in defaults.items()}, **inputs})

    return call


def _upscaler_predictor(model, spec: str, tile: int, tile_pad: int, backend: str, precision: str,
                        color_fix: str = "none") -> Predictor:
    """The serving graph's arithmetic (0-255 in, clipped whole numbers out) around an `Upscaler`,
    for backends other than TensorFlow. Tiles are blended as `sr-tf upscale` blends them."""
    import tensorflow as tf

    from sr_tf.export import BYTES_OUTPUT, PIXELS_OUTPUT
    from sr_tf.inference import Upscaler

    upscaler = Upscaler(model, backend, precision, color_fix)

    def fn(images):
        from sr_tf.tiling import from_unit, to_unit

        return {PIXELS_OUTPUT: from_unit(upscaler.run_tiled(to_unit(images, 255.0), tile, tile_pad), 255.0)}

    def encoded_fn(image_bytes):
        """PNG -> PNG as the `encoded_image` signature, with `sr_tf.inference.upscale_image` (the same
        channel handling and tiler) on this backend."""
        from sr_tf.imageio import decode_image, encode_image
        from sr_tf.inference import upscale_image

        out = [encode_image(upscale_image(upscaler, decode_image(data, "image"), tile, tile_pad), "PNG")
               for data in image_bytes.numpy()]
        return {BYTES_OUTPUT: tf.constant(out)}

    return Predictor(fn, f"model {spec} ({backend}, {precision})", encoded_fn)


def tensor_rows(value) -> np.ndarray:
    """A JSON `[H, W, 3]` instance -> `[1, H, W, 3] float32` (numbers only)."""
    try:
        arr = np.asarray(value, dtype=np.float32)
    except (ValueError, TypeError):
        raise ValueError("instance is not a regular array of numbers (ragged rows or non-numbers)") from None
    if arr.ndim != 3 or arr.shape[-1] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"instance must be an [H, W, 3] array of pixel values. Received: shape={list(arr.shape)}")
    return arr[np.newaxis]
