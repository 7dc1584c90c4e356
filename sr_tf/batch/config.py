"""The typed configuration of a batch prediction job."""

from __future__ import annotations

import dataclasses

from sr_tf.backends import check_choice
from sr_tf.colorfix import COLOR_FIXES
from sr_tf.config import ConfigBase
from sr_tf.defaults import TILE, TILE_PAD

INSTANCES_FORMATS = ("auto", "images", "file-list", "jsonl", "tf-record")
OUTPUT_FORMATS = {"png": ".png", "jpeg": ".jpg", "webp": ".webp", "same": ""}
RESULTS_PREFIX = "prediction.results"
DEFAULT_MAX_INPUT_PIXELS = 1 << 20  # per input image (H * W): `BatchConfig.max_pixels`
ERRORS_PREFIX = "prediction.errors_stats"


@dataclasses.dataclass(frozen=True)
class BatchConfig(ConfigBase):
    """One batch prediction job.

    Attributes:
      model: a SavedModel directory written by `sr-tf export` (local or gs://; its
        `serving_default` signature runs, as TF Serving would run it), a `.keras` file or a
        catalogue name (`sr_tf.pretrained`).
      input: images (a directory, a glob such as `gs://b/in/*.png`, a GCS prefix or one file), or
        with `instances_format` file-list / jsonl / tf-record one or more such files (globs allowed).
      output: directory or `gs://bucket/prefix` for SR images, per-instance tensor predictions and
        the `prediction.results-*` / `prediction.errors_stats-*` JSONL files.
      instances_format: `auto` (from the input's extension: .jsonl, .tfrecord, .txt = file-list,
        otherwise images), `images`, `file-list`, `jsonl` or `tf-record`.
      output_format: `png`, `jpeg`, `webp`, or `same` (keep each input's extension).
      batch_size: images of the same shape that go through the model together (rows of the
        `[N, H, W, 3]` batch; an image with alpha uses two rows).
      max_batch_pixels: at most this many input pixels (rows x H x W) per model call, so large
        images go through one (or a few) at a time however large `batch_size` is.
      tile: tile edge in input pixels for `.keras`/catalogue models (0 = whole images); an
        exported SavedModel tiles as it was exported (`sr-tf export --tile`).
      tile_pad: context pixels around each tile.
      backend, precision: how `.keras`/catalogue models run (see `sr_tf.backends`); a SavedModel
        runs in TensorFlow in the precision it was exported with (`sr-tf export --precision`).
      max_pixels: inputs with more pixels (H * W, read from the header) are reported as errors, not
        decoded. The default (1 MP) keeps an x4 model's outputs for one image near 0.5 GB; None
        uses the image reader's own limit (Pillow's 179 MP), which is far more than memory allows.
      num_shards: number of results (and errors) files.
      quality: JPEG / WebP quality of written images.
      tfrecord_feature: with tf-record input, records are `tf.train.Example`s and this bytes
        feature holds the encoded image; None: each record is the encoded image itself (Vertex AI's
        tf-record format).
      overwrite: recompute and rewrite outputs that already exist (default: skip them, so a
        re-run after a crash only does what is missing).
      color_fix: "none", "wavelet" or "adain" (`sr_tf.colorfix`) for `.keras`/catalogue models; a
        SavedModel has the one it was exported with (`sr-tf export --color-fix`).
      strip_metadata: write pixels only; by default output images keep their input's metadata
        (`sr_tf.imageio.ImageMetadata.upscaled`: ICC profile, EXIF with orientation 1 and the new
        pixel dimensions, XMP, PNG text, DPI times the scale).
    """

    model: str
    input: str
    output: str
    instances_format: str = "auto"
    output_format: str = "png"
    batch_size: int = 8
    max_batch_pixels: int = 1 << 20
    tile: int = TILE
    tile_pad: int = TILE_PAD
    backend: str = "tf"
    precision: str = "float32"
    max_pixels: int | None = DEFAULT_MAX_INPUT_PIXELS
    num_shards: int = 1
    quality: int = 95
    tfrecord_feature: str | None = None
    overwrite: bool = False
    strip_metadata: bool = False
    color_fix: str = "none"

    def __post_init__(self):
        for name in ("model", "input", "output"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"BatchConfig: `{name}` must be a non-empty string. Received: {name}={value!r}")
        if self.instances_format not in INSTANCES_FORMATS:
            raise ValueError(
                f"BatchConfig: `instances_format` must be one of {', '.join(INSTANCES_FORMATS)}. "
                f"Received: instances_format={self.instances_format!r}"
            )
        if self.output_format not in OUTPUT_FORMATS:
            raise ValueError(
                f"BatchConfig: `output_format` must be one of {', '.join(OUTPUT_FORMATS)}. "
                f"Received: output_format={self.output_format!r}"
            )
        _positive_int(self, "batch_size", 1)
        _positive_int(self, "max_batch_pixels", 1)
        _positive_int(self, "tile", 0)
        _positive_int(self, "tile_pad", 0)
        check_choice(self.backend, self.precision)
        if self.color_fix not in COLOR_FIXES:
            raise ValueError(f"BatchConfig: `color_fix` must be one of {', '.join(COLOR_FIXES)}. "
                             f"Received: color_fix={self.color_fix!r}")
        _positive_int(self, "num_shards", 1)
        if self.max_pixels is not None:
            _positive_int(self, "max_pixels", 1)
        if not isinstance(self.quality, int) or not 1 <= self.quality <= 100:
            raise ValueError(f"BatchConfig: `quality` must be in [1, 100]. Received: quality={self.quality!r}")
        if self.num_shards > 99999:
            raise ValueError(f"BatchConfig: `num_shards` must be <= 99999. Received: num_shards={self.num_shards}")


def _positive_int(config: BatchConfig, name: str, minimum: int) -> None:
    value = getattr(config, name)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"BatchConfig: `{name}` must be an integer >= {minimum}. Received: {name}={value!r}")


def shard_name(prefix: str, index: int, count: int) -> str:
    """`prediction.results-00000-of-00002` style names (Vertex AI's batch prediction outputs)."""
    return f"{prefix}-{index:05d}-of-{count:05d}"
