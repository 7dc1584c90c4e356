"""Data: TFRecord schema and building, decoding, degradations, and the tf.data pipeline.

    from sr_tf.data import DatasetConfig, build_dataset
    ds = build_dataset(DatasetConfig(path="records/div2k-train", scale=4, patch_size=128))

Modules: `schema` (record format, manifest), `records` (building/verifying shards),
`decoding`, `resize` (MATLAB imresize), `kernels` (Real-ESRGAN kernels), `degradations`
(bicubic / blur-bicubic / realesrgan), `config` (`DatasetConfig`), `pipeline` (`build_dataset`).
"""

from sr_tf.data.config import DatasetConfig
from sr_tf.data.degradations import (
    DEGRADATIONS,
    RealESRGANConfig,
    bicubic_downscale,
    blur_bicubic,
    degrade,
    realesrgan,
)
from sr_tf.data.pipeline import build_dataset
from sr_tf.data.records import (
    BuildConfig,
    BuildResult,
    CorruptShardError,
    make_tfrecords,
    verify_records,
)
from sr_tf.data.schema import SCHEMA_VERSION, read_manifest

__all__ = [
    "DEGRADATIONS",
    "SCHEMA_VERSION",
    "BuildConfig",
    "BuildResult",
    "CorruptShardError",
    "DatasetConfig",
    "RealESRGANConfig",
    "bicubic_downscale",
    "blur_bicubic",
    "build_dataset",
    "degrade",
    "make_tfrecords",
    "read_manifest",
    "realesrgan",
    "verify_records",
]
