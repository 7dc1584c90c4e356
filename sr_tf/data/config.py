"""`DatasetConfig`: every option of the `tf.data` input pipeline, as one typed dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from sr_tf.config import ConfigBase
from sr_tf.data.degradations import DEGRADATIONS, RealESRGANConfig
from sr_tf.imageio import DEFAULT_MAX_PIXELS

SOURCES = ("tfrecord", "folder", "tfds")
PIPELINE_DEGRADATIONS = (*DEGRADATIONS, "paired")
VALIDATION_CROPS = ("center", "full")
VERIFY_MODES = ("none", "size", "checksum")


@dataclass(frozen=True)
class DatasetConfig(ConfigBase):
    """Options of `build_dataset`; see `sr_tf.data.pipeline` for what each stage does.

    Attributes:
      path: the data: a `make-tfrecords` output folder (`source="tfrecord"`), a folder of HR
        images (`"folder"`), or a TFDS name such as `"div2k/bicubic_x4"` (`"tfds"`). Local or gs://.
      source: "tfrecord", "folder" or "tfds".
      scale: super-resolution factor (LR side = HR side / scale).
      patch_size: HR patch side in pixels; a multiple of `scale`.
      batch_size: global batch size; with an `input_context` each replica gets
        `batch_size / num_replicas_in_sync`.
      degradation: how LR patches are made: "bicubic" (MATLAB imresize), "blur-bicubic",
        "realesrgan", or "paired" (the LR images stored with the data: records built with
        LR folders, `lr_path` for folders, the `lr` feature of TFDS div2k).
      training: random crops, augmentation, a new seeded order of the images on every pass and
        (with `repeat`) an endless stream; False gives validation batches: images in order, no
        randomness except seeded degradations.
      validation_crop: "center" (a `patch_size` centre crop) or "full" (whole images cropped
        to a multiple of `scale`; needs `batch_size=1`).
      seed: seed of every random choice (files, shuffles, crops, augmentation, degradation).
      augment: random horizontal/vertical flips and transposes (rot90), the same for LR and HR.
      crops_per_image: random patches taken from each decoded image (must divide the
        per-replica batch); decoding is the cost, so 4-8 from 480x480 sub-images multiplies
        throughput with little loss of variety.
      crop_candidates: draw this many random crops for each patch and keep the one with the most
        detail (mean absolute difference of neighbouring gray pixels); 1 (the default) is a
        plain random crop. Photos with large flat areas train faster with 4-8.
      shuffle_buffer: TFDS only: elements shuffled before decoding (0: off). Records and
        folders are read by position in a full seeded permutation, which needs no buffer.
      repeat: loop over the data forever (training only); False: one pass (whole steps).
      cycle_length: TFDS only: files read at once.
      cache_decoded: decode every image once, before the first batch, and hold them in memory
        (small sets, e.g. a folder of photos; decoding is then free).
      quantize_lr: round synthesized LR patches to 8-bit levels, like LR image files.
      verify: before reading records, check shard sizes ("size", cheap), SHA-256
        ("checksum", reads everything once) or nothing ("none") against the manifest.
      lr_path: folder of LR images for `source="folder"` with `degradation="paired"`.
      files: `source="folder"` only: these image files instead of every image in `path`
        (e.g. a train/validation split of one folder).
      hr_downscale: downscale every HR image by this integer factor first (antialiased MATLAB
        bicubic, rounded to 8 bits; `sr-tf evaluate --hr-downscale` does the same); 2 hides
        the JPEG artefacts of photos. Not with `degradation="paired"`.
      max_pixels: image files declaring more pixels than this are refused from their header,
        before decoding (folders; records were checked when they were built).
      split: TFDS split ("train", "validation").
      tfds_data_dir: TFDS data dir with the prepared dataset.
      tfds_manual_dir: TFDS manual dir (passed to `download_and_prepare`).
      tfds_download: let TFDS download and prepare the data if missing.
      blur_sigma, blur_kernel_size: the "blur-bicubic" Gaussian.
      realesrgan: settings of the "realesrgan" degradation.
      num_parallel_calls: parallelism of the maps (-1: tf.data.AUTOTUNE).
    """

    path: str
    source: str = "tfrecord"
    scale: int = 4
    patch_size: int = 128
    batch_size: int = 16
    degradation: str = "bicubic"
    training: bool = True
    validation_crop: str = "center"
    seed: int = 0
    augment: bool = True
    crops_per_image: int = 1
    crop_candidates: int = 1
    shuffle_buffer: int = 512
    repeat: bool = True
    cycle_length: int = 4
    cache_decoded: bool = False
    quantize_lr: bool = True
    verify: str = "size"
    lr_path: str | None = None
    files: tuple[str, ...] = ()
    hr_downscale: int = 1
    max_pixels: int = DEFAULT_MAX_PIXELS
    split: str = "train"
    tfds_data_dir: str | None = None
    tfds_manual_dir: str | None = None
    tfds_download: bool = False
    blur_sigma: float = 1.6
    blur_kernel_size: int = 7
    realesrgan: RealESRGANConfig = field(default_factory=RealESRGANConfig)
    num_parallel_calls: int = -1

    def __post_init__(self):
        if isinstance(self.realesrgan, dict):  # from JSON/YAML
            object.__setattr__(self, "realesrgan", RealESRGANConfig(**self.realesrgan))
        if not self.path:
            raise ValueError(f"DatasetConfig.path is required. Received: path={self.path!r}")
        self._one_of("source", SOURCES)
        self._one_of("degradation", PIPELINE_DEGRADATIONS)
        self._one_of("validation_crop", VALIDATION_CROPS)
        self._one_of("verify", VERIFY_MODES)
        object.__setattr__(self, "files", tuple(str(f) for f in self.files))
        for name in ("scale", "patch_size", "batch_size", "crops_per_image", "crop_candidates", "cycle_length", "hr_downscale", "max_pixels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DatasetConfig.{name} must be a positive integer. Received: {name}={value!r}")
        if self.patch_size % self.scale:
            raise ValueError(f"DatasetConfig.patch_size must be a multiple of scale. Received: patch_size={self.patch_size}, scale={self.scale}")
        if self.shuffle_buffer < 0:
            raise ValueError(f"shuffle_buffer must be >= 0. Received: shuffle_buffer={self.shuffle_buffer}")
        if self.files and self.source != "folder":
            raise ValueError(f"files selects images of a folder: use source='folder'. Received: source={self.source!r}")
        if self.hr_downscale > 1 and self.degradation == "paired":
            raise ValueError("hr_downscale would break the pairing of stored LR and HR images: use it with a "
                             f"synthesized degradation. Received: hr_downscale={self.hr_downscale}")
        if not self.training and self.validation_crop == "full" and self.batch_size != 1:
            raise ValueError(f"validation_crop='full' gives images of different sizes: use batch_size=1. Received: batch_size={self.batch_size}")
        if self.degradation == "realesrgan" and self.scale * 2 > self.patch_size:
            raise ValueError(f"realesrgan needs LR patches of at least 2 pixels. Received: patch_size={self.patch_size}, scale={self.scale}")
        if self.source == "folder" and self.degradation == "paired" and not self.lr_path:
            raise ValueError("degradation='paired' with source='folder' needs lr_path (the folder of LR images).")
        if self.num_parallel_calls == 0 or self.num_parallel_calls < -1:
            raise ValueError(f"DatasetConfig.num_parallel_calls must be -1 (AUTOTUNE) or positive. Received: {self.num_parallel_calls}")

    def _one_of(self, name: str, allowed: tuple[str, ...]) -> None:
        value = getattr(self, name)
        if value not in allowed:
            raise ValueError(f"DatasetConfig.{name} must be one of {allowed}. Received: {name}={value!r}")

    @property
    def lr_patch_size(self) -> int:
        return self.patch_size // self.scale

    def replace(self, **changes) -> DatasetConfig:
        """A copy with `changes` applied (validated again)."""
        return dataclasses.replace(self, **changes)
