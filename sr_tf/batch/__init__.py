"""Batch prediction: Vertex-AI-style jobs over local folders or Google Cloud Storage, on Apache Beam.

`run_batch(BatchConfig(...), pipeline_args)` runs a job; `sr_tf.batch.vertex` builds the equivalent
Vertex AI requests offline. Apache Beam is imported only when a job is built (`sr-tf[batch]`).
"""

from sr_tf.batch.config import BatchConfig, shard_name

# Imported on first use, so `sr_tf.batch.config` (the CLI's choices) costs no NumPy, Pillow or Beam.
_LAZY = {"BatchSummary": "results", "build_pipeline": "pipeline", "run_batch": "pipeline",
         "Instance": "sources", "Source": "sources", "find_sources": "sources"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"sr_tf.batch.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'sr_tf.batch' has no attribute {name!r}")


__all__ = ["BatchConfig", "BatchSummary", "Instance", "Source", "build_pipeline", "find_sources",
           "run_batch", "shard_name"]
