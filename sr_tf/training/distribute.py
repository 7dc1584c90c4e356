"""Choosing a `tf.distribute` strategy, distributing per-replica datasets, and the chief worker."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import tensorflow as tf

from sr_tf.backends import cpu_has_bf16


def select_strategy() -> tf.distribute.Strategy:
    """`MultiWorkerMirroredStrategy` when `TF_CONFIG` names several workers, `MirroredStrategy`
    when several GPUs are visible, the default strategy otherwise."""
    tf_config = os.environ.get("TF_CONFIG")
    if tf_config:
        try:
            cluster = json.loads(tf_config).get("cluster", {})
        except json.JSONDecodeError as err:
            raise ValueError(f"TF_CONFIG is not valid JSON. Received: TF_CONFIG={tf_config!r}") from err
        if sum(len(v) for v in cluster.values()) > 1:
            return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this worker writes checkpoints and summaries: the `chief` task, or worker 0 of a
    cluster without one (Keras' convention); always true outside multi-worker training."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def distribute(
    strategy: tf.distribute.Strategy,
    dataset_fn: Callable[[tf.distribute.InputContext | None], tf.data.Dataset],
) -> tf.data.Dataset | tf.distribute.DistributedDataset:
    """`dataset_fn(input_context)` returns batches of the *per-replica* size for its input pipeline
    (as `sr_tf.data.build_dataset` does); one replica gets the plain dataset."""
    if strategy.num_replicas_in_sync == 1 and not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return dataset_fn(None)
    return strategy.distribute_datasets_from_function(dataset_fn)


MIXED_PRECISION = (None, "auto", "mixed_float16", "mixed_bfloat16")


def resolve_mixed_precision(setting: str | None) -> str | None:
    """The Keras dtype policy for a config's `mixed_precision`: "auto" is `mixed_float16` on GPUs,
    `mixed_bfloat16` on CPUs with native bfloat16, float32 (None) otherwise."""
    if setting not in MIXED_PRECISION:
        raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}. Received: mixed_precision={setting!r}")
    if setting != "auto":
        return setting
    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bf16() else None
