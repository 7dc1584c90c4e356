"""SavedModel export for TensorFlow Serving: one `serve()` graph wrapped in two signatures.

Signatures (names and aliases are what clients use on the wire):

* `serving_default`: input `images` float32 `[N, H, W, 3]` pixel values in [0, 255] (any N, H, W);
  output `upscaled` float32 `[N, s*H, s*W, 3]` in [0, 255], clipped and rounded to whole numbers.
* `encoded_image`: input `image_bytes` string `[N]` (PNG, JPEG, GIF, BMP or WebP bytes; base64
  `{"b64": ...}` on the REST wire); output `upscaled_bytes` string `[N]` PNG bytes. Grayscale stays
  grayscale, RGBA/gray+alpha keep an upscaled alpha channel, 16-bit PNG stays 16-bit at full
  precision (the model sees values / 65535 and its output is rounded to 0-65535, not to 8 bits).
  It keeps pixels only: the answer carries no ICC profile, EXIF, XMP, text or DPI, and the pixels
  are as stored (EXIF orientation is not applied). Clients put the input's metadata back
  (`sr-tf predict` does: it sends the pixels upright and writes `sr_tf.imageio.ImageMetadata.upscaled`).

A model with a noise input (SRMD: `accepts_noise_level`) has one more input in both signatures:
`noise_level` float32 `[N]` (or `[1]` for all images), sigma in 8-bit units (0-75). It has a default
(the model's `noise_level`), recorded in the SignatureDef's `defaults`: gRPC Predict requests (TF
Serving's and ours) and Python callers may leave it out. TF Serving's REST parser wants every input
of a signature, so REST clients send it: `{"inputs": {"images": ..., "noise_level": [5.0]}}`. Every
other model's signatures are exactly as above.

A blend export (`sr_tf.models.interpolate.WeightBlend`: `sr-tf export --blend A B`, or a denoise
family with `--denoise`) holds every weight set and blends them in the graph at each request's
strength (Real-ESRGAN's `-dn`: `w = s * A + (1 - s) * B`). Its `serving_default` and `encoded_image`
keep the contract above and run at the export's default strength; two more signatures take the knob:

* `blended`: inputs `images` (as above) and `strength` float32 scalar `[]`; output `upscaled`.
* `encoded_image_blended`: inputs `image_bytes` (as above) and `strength`; output `upscaled_bytes`.

`strength` is clipped to the blend's range (0..1 for two models; a family's levels, e.g. waifu2x's
and Real-CUGAN's -1..3) and has the default strength as its SignatureDef default; the range is the
SavedModel's `strength_range` variable (float32 `[2]`). Being a scalar, it
is sent in the columnar REST format: `{"signature_name": "blended", "inputs": {"images": ...,
"strength": 0.3}}`.

All scaling, clipping, rounding and casting happen inside the graph, and the model runs on tiles
of `tile_size` pixels (plus `tile_pad` pixels of context on each side) blended across the cuts,
so large images do not need the whole feature map in memory. Tiling and grey/alpha handling are
`sr_tf.tiling`'s, the code `sr-tf upscale` runs, so both give the same pixels for a float32 model.
With `ExportConfig.color_fix` ("wavelet" or "adain", `sr_tf.colorfix`) both signatures take each
whole upscaled image's colours from its bicubic-upscaled input, in the graph, after tiling.

Layout (what TF Serving expects): `BASE/NAME/VERSION/{saved_model.pb, variables/,
assets.extra/tf_serving_warmup_requests}` with VERSION a positive integer, and, when the export is
given batching parameters, `BASE/NAME/VERSION/batching_params.pbtxt`: a text-format
`BatchingParameters` that TF Serving (and `sr-tf serve`) use for this model instead of the server's
`--batching_parameters_file` under `--enable_batching --enable_per_model_batching_parameters`. The
file sits in the version folder itself, not in `assets.extra/` (TF Serving's
`servables/tensorflow/bundle_factory_util.cc`, `kBatchingParamsFilename`).
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from sr_tf.backends import PRECISIONS, cast_model
from sr_tf.colorfix import COLOR_FIXES, color_fix
from sr_tf.config import ConfigBase
from sr_tf.defaults import TILE_PAD
from sr_tf.models.interpolate import WeightBlend
from sr_tf.models.layers import elementwise_form
from sr_tf.signatures import (  # noqa: F401  (re-exported: the names are part of this module's API)
    BLEND_SIGNATURE,
    BYTES_INPUT,
    BYTES_OUTPUT,
    DEFAULT_SIGNATURE,
    ENCODED_BLEND_SIGNATURE,
    ENCODED_SIGNATURE,
    NOISE_INPUT,
    PIXELS_INPUT,
    PIXELS_OUTPUT,
    STRENGTH_INPUT,
)
from sr_tf.tiling import from_unit, to_unit, upscale_channels, upscale_tiled

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
BATCHING_PARAMS_FILE = "batching_params.pbtxt"  # in the version folder (bundle_factory_util.cc)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclasses.dataclass(frozen=True)
class ExportConfig(ConfigBase):
    """How a generator is exported.

    Attributes:
      tile_size: input tile edge in pixels; 0 runs the whole image at once.
      tile_pad: context pixels added around each tile (cropped from the output).
      warmup: write `assets.extra/tf_serving_warmup_requests` (one request per signature).
      warmup_size: edge of the warmup images in pixels.
      precision: dtype of the saved weights and of the model's arithmetic ("float32", "float16",
        "bfloat16"); the signatures' inputs and outputs are unchanged.
      batching: this model's own `BatchingParameters` (field name -> value, e.g.
        `{"max_batch_size": 4, "batch_timeout_micros": 2000, "allowed_batch_sizes": [1, 2, 4]}`),
        written to `batching_params.pbtxt` (see `batching_parameters_text`); empty: no file.
      color_fix: "none", "wavelet" or "adain" (`sr_tf.colorfix`), in the graph of both signatures:
        each whole upscaled image takes its colours from its bicubic-upscaled input.
    """

    tile_size: int = 256
    tile_pad: int = TILE_PAD
    warmup: bool = True
    warmup_size: int = 16
    precision: str = "float32"
    batching: dict[str, Any] = dataclasses.field(default_factory=dict)
    color_fix: str = "none"

    def __post_init__(self):
        if not isinstance(self.tile_size, int) or self.tile_size < 0:
            raise ValueError(f"ExportConfig: `tile_size` must be an integer >= 0. Received: tile_size={self.tile_size!r}")
        if not isinstance(self.tile_pad, int) or self.tile_pad < 0:
            raise ValueError(f"ExportConfig: `tile_pad` must be an integer >= 0. Received: tile_pad={self.tile_pad!r}")
        if not isinstance(self.warmup_size, int) or self.warmup_size < 1:
            raise ValueError(f"ExportConfig: `warmup_size` must be >= 1. Received: warmup_size={self.warmup_size!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"ExportConfig: `precision` must be one of {PRECISIONS}. Received: precision={self.precision!r}")
        if self.color_fix not in COLOR_FIXES:
            raise ValueError(f"ExportConfig: `color_fix` must be one of {', '.join(COLOR_FIXES)}. "
                             f"Received: color_fix={self.color_fix!r}")
        if self.batching:
            batching_parameters_text(self.batching)  # raises naming a bad field


def batching_parameters_text(params: Mapping[str, Any]) -> str:
    """`params` as a text-format TF Serving `BatchingParameters` (session_bundle_config.proto), the
    contents of a version folder's `batching_params.pbtxt`.

    Args:
      params: field name -> value. `max_batch_size`, `batch_timeout_micros`, `max_enqueued_batches`,
        `num_batch_threads`, `max_execution_batch_size`: int >= 0 (`max_batch_size` >= 1);
        `allowed_batch_sizes`: increasing ints ending with `max_batch_size` (TF Serving refuses to
        load the model otherwise); `pad_variable_length_inputs`, `enable_large_batch_splitting`:
        bool; `thread_pool_name`: str. (TF Serving takes the thread pool, `num_batch_threads` and
        `thread_pool_name`, from the server-wide file only: the pool is shared by every model.)

    Raises:
      ValueError: naming an unknown field (with the valid ones) or a value of the wrong type.
    """
    from google.protobuf import descriptor

    from sr_tf.tfserving_protos import message_class

    proto = message_class("BatchingParameters")()
    fields = proto.DESCRIPTOR.fields_by_name
    for name, value in params.items():
        field = fields.get(name)
        if field is None:
            import difflib

            close = difflib.get_close_matches(str(name), list(fields), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"`batching`: {name!r} is not a BatchingParameters field; {hint}"
                             f"the fields are {', '.join(fields)}. Received: {name}={value!r}")
        kind = field.message_type.fields_by_name["value"].type if field.message_type else field.type
        expected = {descriptor.FieldDescriptor.TYPE_INT64: int, descriptor.FieldDescriptor.TYPE_BOOL: bool,
                    descriptor.FieldDescriptor.TYPE_STRING: str}[kind]
        repeated = field.label == descriptor.FieldDescriptor.LABEL_REPEATED
        values = list(value) if repeated and isinstance(value, (list, tuple)) else [value]
        least = 1 if name == "max_batch_size" else 0
        for v in values:
            if type(v) is not expected or (expected is int and v < least):
                what = {int: f"an integer >= {least}", bool: "true or false", str: "a string"}[expected]
                if repeated:
                    what = f"a list of integers >= {least}"
                raise ValueError(f"`batching`: {name} must be {what}. Received: {name}={value!r}")
        if repeated:
            getattr(proto, name).extend(values)
        elif field.message_type:
            getattr(proto, name).value = value
        else:
            setattr(proto, name, value)
    sizes = list(proto.allowed_batch_sizes)
    if sizes and (sizes != sorted(set(sizes)) or not proto.HasField("max_batch_size")
                  or sizes[-1] != proto.max_batch_size.value):
        raise ValueError("`batching`: allowed_batch_sizes must increase and end with max_batch_size (TF Serving "
                         f"refuses the model otherwise). Received: allowed_batch_sizes={sizes}, "
                         f"max_batch_size={proto.max_batch_size.value if proto.HasField('max_batch_size') else None}")
    from google.protobuf import text_format

    return text_format.MessageToString(proto)


def write_batching_parameters(export_dir: str | os.PathLike, params: Mapping[str, Any]) -> Path:
    """Writes `params` (see `batching_parameters_text`) to `export_dir/batching_params.pbtxt`;
    returns the file's path."""
    path = Path(export_dir) / BATCHING_PARAMS_FILE
    path.write_text(batching_parameters_text(params))
    return path


class SRServingModule(tf.Module):
    """Wraps a generator (`[N, H, W, 3] float32 in [0, 1]` -> `[N, sH, sW, 3]`) for serving.

    Args:
      model: a Keras generator; one with `accepts_noise_level` (SRMD) also takes `noise_level`.
      scale: its upscaling factor.
      config: tiling options (see `ExportConfig`).
    """

    def __init__(self, model, scale: int, config: ExportConfig | None = None):
        super().__init__(name="sr_serving")
        self.blend = model if isinstance(model, WeightBlend) else None
        if self.blend is not None:
            if getattr(self.blend.models[0], "accepts_noise_level", False):
                raise ValueError("A blend of models with a noise input (SRMD) is not supported; "
                                 "export one model with its noise_level instead")
            self.blend_models = list(self.blend.models)  # tracked: every weight set is saved
            # read by `sr-tf serve`'s web page for its slider (a SignatureDef records defaults, not ranges)
            self.strength_range = tf.Variable(self.blend.range, trainable=False, dtype=tf.float32,
                                              name="strength_range")
            model = self.blend.models[0]
        self.model = model
        self.scale = int(scale)
        self.config = config or ExportConfig()
        pixels_spec = tf.TensorSpec([None, None, None, 3], tf.float32, name=PIXELS_INPUT)
        bytes_spec = tf.TensorSpec([None], tf.string, name=BYTES_INPUT)
        if self.blend is not None:
            self._add_blend_signatures(pixels_spec, bytes_spec)
        if not getattr(model, "accepts_noise_level", False):
            self.pixels = tf.function(self._serve_pixels, input_signature=[pixels_spec])
            self.encoded = tf.function(self._serve_encoded, input_signature=[bytes_spec])
            self._signature_functions = (self.pixels.get_concrete_function(), self.encoded.get_concrete_function())
            return
        # A tensor default of a tf.function's argument becomes the SignatureDef's default for that input.
        default = tf.constant([float(model.noise_level)], tf.float32)
        noise_spec = tf.TensorSpec([None], tf.float32, name=NOISE_INPUT)

        def serve_pixels(images, noise_level=default):
            return self._serve_pixels(images, noise_level)

        def serve_encoded(image_bytes, noise_level=default):
            return self._serve_encoded(image_bytes, noise_level)

        self.pixels = tf.function(serve_pixels, input_signature=[pixels_spec, noise_spec])
        self.encoded = tf.function(serve_encoded, input_signature=[bytes_spec, noise_spec])
        self._signature_functions = (self.pixels, self.encoded)

    def _add_blend_signatures(self, pixels_spec, bytes_spec) -> None:
        default = tf.constant(self.blend.default, tf.float32)
        strength_spec = tf.TensorSpec([], tf.float32, name=STRENGTH_INPUT)

        def serve_pixels(images, strength=default):
            return self._serve_pixels(images, strength=strength)

        def serve_encoded(image_bytes, strength=default):
            return self._serve_encoded(image_bytes, strength=strength)

        self.blended = tf.function(serve_pixels, input_signature=[pixels_spec, strength_spec])
        self.encoded_blended = tf.function(serve_encoded, input_signature=[bytes_spec, strength_spec])

    # --- the one serve() graph -------------------------------------------------------------
    def upscale(self, pixels: tf.Tensor, peak=255.0, noise_level=None, strength=None) -> tf.Tensor:
        """`[N, H, W, 3] float32 in [0, peak]` -> `[N, sH, sW, 3] float32`, whole numbers in [0, peak]
        (peak 255 for 8-bit images, 65535 for 16-bit ones: the model works on [0, 1] either way).
        `noise_level`: `[N]` or `[1]`, for models with a noise input (None: the model's default).
        `strength`: scalar, for a blend export (None: the blend's default)."""
        return from_unit(self._tiled(to_unit(pixels, peak), noise_level, strength), peak)

    def _run_model(self, x: tf.Tensor, noise_level=None, weights=None) -> tf.Tensor:
        # A static channel count: Keras compiles a conv whose input channels are unknown with XLA
        # (its grouped-convolution path), which TF Serving refuses without --xla_cpu_compilation_enabled.
        x = tf.ensure_shape(x, [None, None, None, 3])
        if weights is not None:  # a blend: the first model's graph with the blended values
            y, _ = self.model.stateless_call(*weights, x)
            return tf.cast(y, tf.float32)
        extra = {} if noise_level is None else {"noise_level": noise_level}
        return tf.cast(self.model(x, training=False, **extra), tf.float32)

    def _tiled(self, x: tf.Tensor, noise_level=None, strength=None) -> tf.Tensor:
        """`sr_tf.tiling.upscale_tiled`, then `sr_tf.colorfix.color_fix`: what `sr-tf upscale` runs too."""
        weights = None
        if self.blend is not None:  # blended once per call, used by every tile
            weights = self.blend.values(self.blend.default if strength is None else strength)
        out = upscale_tiled(x, lambda t: self._run_model(t, noise_level, weights), self.scale,
                            self.config.tile_size, self.config.tile_pad)
        return color_fix(out, x, self.config.color_fix)

    # --- signatures ------------------------------------------------------------------------
    def _serve_pixels(self, images, noise_level=None, strength=None):
        return {PIXELS_OUTPUT: self.upscale(images, noise_level=noise_level, strength=strength)}

    def _serve_encoded(self, image_bytes, noise_level=None, strength=None):
        if noise_level is None:
            encoded = tf.map_fn(lambda data: self._upscale_one_encoded(data, strength=strength), image_bytes,
                                fn_output_signature=tf.string)
        else:  # one level per image (a single one is every image's)
            levels = self.model.noise_per_image(noise_level, tf.shape(image_bytes)[0])
            encoded = tf.map_fn(lambda args: self._upscale_one_encoded(args[0], args[1][None]),
                                (image_bytes, levels), fn_output_signature=tf.string)
        return {BYTES_OUTPUT: encoded}

    def _upscale_one_encoded(self, data: tf.Tensor, noise_level=None, strength=None) -> tf.Tensor:
        """One encoded image -> PNG bytes with the same channels and bit depth."""
        # The first 25 bytes, zero-padded: a shorter input must reach decode_image's own error
        # ("Unknown image file format"), not fail reading byte 24.
        head = tf.strings.join([tf.strings.substr(data, 0, 25), b"\x00" * 25])
        is_png = tf.equal(tf.strings.substr(head, 0, 8), _PNG_SIGNATURE)
        is_16bit = tf.logical_and(is_png, tf.equal(tf.strings.substr(head, 24, 1), b"\x10"))

        def decode16():
            return tf.cast(tf.io.decode_png(data, channels=0, dtype=tf.uint16), tf.float32)

        def decode8():
            image = tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False)
            return tf.cast(image, tf.float32)

        image = tf.cond(is_16bit, decode16, decode8)  # [H, W, C] float32 in [0, peak]
        peak = tf.where(is_16bit, 65535.0, 255.0)
        # Grey and alpha are handled by sr_tf.tiling.upscale_channels, as in `sr-tf upscale`.
        tiled = lambda x: self._tiled(x, noise_level, strength)  # noqa: E731
        result = from_unit(upscale_channels(to_unit(image, peak), tiled, self.scale), peak)

        def encode16():
            return tf.io.encode_png(tf.cast(result, tf.uint16))

        def encode8():
            return tf.io.encode_png(tf.cast(result, tf.uint8))

        return tf.cond(is_16bit, encode16, encode8)

    def signatures(self) -> dict:
        pixels, encoded = self._signature_functions
        out = {DEFAULT_SIGNATURE: pixels, ENCODED_SIGNATURE: encoded}
        if self.blend is not None:
            out.update({BLEND_SIGNATURE: self.blended, ENCODED_BLEND_SIGNATURE: self.encoded_blended})
        return out


def _png_bytes(size: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def write_warmup_requests(export_dir: str | os.PathLike, model_name: str = "model", size: int = 16) -> Path:
    """Writes `assets.extra/tf_serving_warmup_requests`: a TFRecord of `PredictionLog` protos.

    One predict request per signature (a `[1, size, size, 3]` float32 tensor and one PNG).
    Returns the file's path.
    """
    try:
        from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    except ImportError as err:
        raise ImportError(
            "Writing warmup requests needs tensorflow-serving-api: pip install 'sr-tf[serve]', "
            "or export with warmup=False."
        ) from err

    path = Path(export_dir) / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype(np.float32)
    requests = [
        (DEFAULT_SIGNATURE, PIXELS_INPUT, tf.make_tensor_proto(pixels)),
        (ENCODED_SIGNATURE, BYTES_INPUT, tf.make_tensor_proto([_png_bytes(size)], dtype=tf.string)),
    ]
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, key, tensor in requests:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature)
            )
            request.inputs[key].CopyFrom(tensor)
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path


def version_dir_parts(out: str | os.PathLike) -> tuple[Path, str, int]:
    """Splits `BASE/NAME/VERSION` into (model base path, model name, version); checks VERSION."""
    out = Path(out)
    if not out.name.isdigit() or int(out.name) < 1:
        raise ValueError(
            "The export path must end in a positive integer version directory "
            f"(BASE/NAME/VERSION, as TF Serving expects). Received: out={str(out)!r}"
        )
    return out.parent, out.parent.name or "model", int(out.name)


def export_savedmodel(model, out: str | os.PathLike, config: ExportConfig | None = None,
                      scale: int | None = None, overwrite: bool = False) -> Path:
    """Exports `model` as a SavedModel at `out` = `BASE/NAME/VERSION` and returns that path.

    The SavedModel is written to a hidden sibling directory first and renamed into place, so a
    server polling `BASE/NAME` never sees a half-written version.

    Args:
      model: Keras generator, `[N, H, W, 3] float32 in [0, 1]` -> `[N, sH, sW, 3]`, or a
        `WeightBlend` of several (adds the `blended` signatures, see the module's docstring).
      out: version directory; its last component must be a positive integer.
      config: tiling and warmup options.
      scale: upscaling factor; read from the model (`sr_tf.models.model_scale`) when None.
      overwrite: replace an existing version directory instead of refusing.
    """
    from sr_tf.models import model_scale

    config = config or ExportConfig()
    base, name, _ = version_dir_parts(out)
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"Version directory already exists (overwrite=True replaces it): {out}")
    if isinstance(model, WeightBlend):
        scale = model_scale(model.models[0]) if scale is None else int(scale)
        model = WeightBlend([cast_model(m, config.precision) for m in model.models], model.levels, model.default)
    else:
        scale = model_scale(model) if scale is None else int(scale)
        model = cast_model(model, config.precision)
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=base))
    try:
        # Traced in the "onednn" form whatever the caller's: TF Serving refuses XLA kernels unless started
        # with --xla_cpu_compilation_enabled (and a loaded SavedModel ran its XLA PReLU no faster);
        # its PReLUs are convolutions, which oneDNN vectorises for bfloat16 and TensorFlow's
        # elementwise kernels do not.
        with elementwise_form("onednn"):
            module = SRServingModule(model, scale, config)
            tf.saved_model.save(module, str(tmp), signatures=module.signatures())
        if config.warmup:
            write_warmup_requests(tmp, name, config.warmup_size)
        if config.batching:
            write_batching_parameters(tmp, config.batching)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def read_warmup_requests(version_dir: str | os.PathLike) -> list:
    """The `PredictRequest`s in a version's warmup file (empty list when there is none)."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(str(version_dir), WARMUP_FILE)
    if not tf.io.gfile.exists(path):
        return []
    requests = []
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        if log.WhichOneof("log_type") == "predict_log":
            requests.append(log.predict_log.request)
    return requests
