"""The Apache Beam pipeline of a batch prediction job, and the driver that runs it.

    Create(sources) -> FlatMap(expand: one element per image / JSONL line / TFRecord record)
      -> Reshuffle (spreads instances over workers) -> ParDo(PredictDoFn) -> outcomes
      -> key by (results or errors, shard) -> GroupByKey -> one `prediction.results-K-of-N` or
         `prediction.errors_stats-K-of-N` file per group

The driver checks the model and the output folder's manifest before anything runs, deletes earlier
results/errors files before the job and writes the shards that got no lines as empty files after
it, so every shard file exists and none is left from an earlier run. The workers' side is
`sr_tf.batch.predict`, the lines and shards `sr_tf.batch.results`. The results files are written
only at the end, from one line per instance, so a job killed at any point and run again writes each
missing output once and ends with exactly one line per input.
"""

from __future__ import annotations

import dataclasses
import json

import apache_beam as beam

from sr_tf import storage
from sr_tf.batch import predict
from sr_tf.batch.config import ERRORS_PREFIX, RESULTS_PREFIX, BatchConfig, shard_name
from sr_tf.batch.predict import PredictDoFn
from sr_tf.batch.results import BatchSummary, WriteShard, metric_count, remove_shards, shard_of
from sr_tf.batch.sources import Source, expand, find_sources
from sr_tf.imageio import DEFAULT_MAX_PIXELS


def build_pipeline(pipeline, config: BatchConfig, sources: list[Source], max_pixels: int) -> None:
    """Adds the job's transforms to a `beam.Pipeline` (see the module docstring)."""
    n = config.num_shards
    (
        pipeline
        | "Sources" >> beam.Create(sources)
        | "Instances" >> beam.FlatMap(expand, config)
        | "Spread" >> beam.Reshuffle()
        | "Predict" >> beam.ParDo(PredictDoFn(config, max_pixels))
        | "KeyByShard" >> beam.Map(lambda o: ((o.ok, shard_of(o.key, n)), (o.key, o.line)))
        | "GroupByShard" >> beam.GroupByKey()
        | "WriteShards" >> beam.ParDo(WriteShard(config.output, n))
    )


def check_model_spec(spec: str) -> str:
    """Refuses a `--model` that cannot be loaded, before any worker starts; returns the spec to use
    (a TF Serving base directory resolves to its newest version). See `sr_tf.runtime.model_spec`."""
    from sr_tf.runtime import model_spec

    parsed = model_spec(spec)
    return parsed.location if parsed.kind == "savedmodel" else spec


MANIFEST = ".sr-tf-batch-job.json"
_MANIFEST_FIELDS = ("model", "instances_format", "output_format", "tile", "tile_pad", "quality", "tfrecord_feature")


def check_manifest(config: BatchConfig) -> None:
    """Refuses to resume into an output folder written by a different job (other model or format).

    The first run writes `OUTPUT/.sr-tf-batch-job.json`; a later run with other settings would
    otherwise skip outputs that the new settings would compute differently. `overwrite` replaces it.
    """
    uri = storage.join(config.output, MANIFEST)
    want = {k: getattr(config, k) for k in _MANIFEST_FIELDS}
    try:
        have = json.loads(storage.read_text(uri))
    except FileNotFoundError:
        have = None
    if have == want:
        return
    if not config.overwrite:
        if have is not None:
            diff = {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}
            raise ValueError(
                f"`output` {config.output!r} holds the outputs of a different job (was -> now: {diff}); "
                "use another `output`, or `overwrite` to recompute everything"
            )
    storage.write_bytes(uri, json.dumps(want, sort_keys=True).encode(), "application/json")


def run_batch(config: BatchConfig, pipeline_args: list[str] | None = None, progress: bool = False) -> BatchSummary:
    """Runs the job (DirectRunner unless `pipeline_args` names another `--runner`) and waits for it.

    Args:
      config: the job.
      pipeline_args: Apache Beam pipeline options, e.g. `["--runner=DataflowRunner", "--project=p"]`.
      progress: show a progress bar of finished instances on stderr (out of the number of images
        when the inputs are image files; it moves while the job runs on the in-process DirectRunner).

    Raises:
      FileNotFoundError / ValueError: bad `--model` or `--input`, or `--output` holds another
        job's outputs (before anything runs).
    """
    from apache_beam.options.pipeline_options import PipelineOptions


    config = dataclasses.replace(config, model=check_model_spec(config.model))
    sources = find_sources(config)
    check_manifest(config)
    limit = config.max_pixels or DEFAULT_MAX_PIXELS
    options = PipelineOptions(list(pipeline_args or []))
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, config, sources, limit)
    total = len(sources) if all(s.kind == "image" for s in sources) else None
    return run_and_summarise(pipeline, config, progress=progress, total=total)


def run_and_summarise(pipeline, config: BatchConfig, progress: bool = False, total: int | None = None) -> BatchSummary:
    """Runs a built job and waits for it; every results/errors shard exists afterwards, none from earlier.
    With `progress`, a bar counts the instances `PredictDoFn` finishes (out of `total` when known)."""
    remove_shards(config.output)  # every line is rebuilt by this run; none may survive from an earlier one
    from tqdm import tqdm

    bar = tqdm(total=total, unit="img", desc="instances", disable=not progress)
    predict.set_progress_hook(bar.update)
    try:
        result = pipeline.run()
        result.wait_until_finish()
    finally:
        predict.set_progress_hook(None)
        bar.close()
    succeeded, failed = metric_count(result, "result_lines"), metric_count(result, "error_lines")
    files = {p: [storage.join(config.output, shard_name(p, k, config.num_shards)) for k in range(config.num_shards)]
             for p in (RESULTS_PREFIX, ERRORS_PREFIX)}
    for uri in files[RESULTS_PREFIX] + files[ERRORS_PREFIX]:
        if not storage.exists(uri):  # a shard that got no lines
            storage.write_bytes(uri, b"", "application/jsonl")
    return BatchSummary(succeeded, failed, metric_count(result, "skipped"), files[RESULTS_PREFIX], files[ERRORS_PREFIX])
