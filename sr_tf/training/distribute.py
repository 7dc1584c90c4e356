"""Choosing a `tf.distribute` strategy and distributing per-replica datasets."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import tensorflow as tf


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


def distribute_dataset(
    strategy: tf.distribute.Strategy,
    dataset_fn: Callable[[tf.distribute.InputContext | None], tf.data.Dataset],
) -> tf.data.Dataset | tf.distribute.DistributedDataset:
    """`dataset_fn(input_context)` must return batches of the *per-replica* batch size
    (`input_context.get_per_replica_batch_size(global_batch)`) and shard by
    `input_context.input_pipeline_id` when it has several pipelines."""
    if strategy.num_replicas_in_sync == 1 and not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return dataset_fn(tf.distribute.InputContext())
    return strategy.distribute_datasets_from_function(dataset_fn)


def batched_dataset_fn(
    dataset: tf.data.Dataset, global_batch_size: int, *, repeat: bool = True
) -> Callable[[tf.distribute.InputContext | None], tf.data.Dataset]:
    """Wraps an *unbatched* dataset of `(lr, hr)` pairs into a `dataset_fn` for `distribute_dataset`:
    sharded per input pipeline and batched per replica (`drop_remainder=True`)."""

    def fn(ctx: tf.distribute.InputContext | None) -> tf.data.Dataset:
        ctx = ctx or tf.distribute.InputContext()
        ds = dataset
        if ctx.num_input_pipelines > 1:
            ds = ds.shard(ctx.num_input_pipelines, ctx.input_pipeline_id)
        if repeat:
            ds = ds.repeat()
        per_replica = ctx.get_per_replica_batch_size(global_batch_size)
        return ds.batch(per_replica, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    return fn
