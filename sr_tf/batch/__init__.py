"""Batch prediction: Vertex-AI-style jobs over local folders or Google Cloud Storage, on Apache Beam.

`run_batch(BatchConfig(...), pipeline_args)` runs a job; `sr_tf.batch.vertex` builds the equivalent
Vertex AI requests offline. Apache Beam is imported only when a job is built (`sr-tf[batch]`).
"""

from sr_tf.batch.config import BatchConfig, shard_name
from sr_tf.batch.sources import Instance, Source, find_sources

_LAZY = {"BatchSummary", "build_pipeline", "run_batch"}


def __getattr__(name):
    if name in _LAZY:
        from sr_tf.batch import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'sr_tf.batch' has no attribute {name!r}")


__all__ = ["BatchConfig", "BatchSummary", "Instance", "Source", "build_pipeline", "find_sources",
           "run_batch", "shard_name"]
