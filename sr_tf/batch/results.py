"""What a batch job writes besides its outputs: results and errors lines, their shards, the summary.

Lines are Vertex AI batch prediction's: `{"instance": ..., "prediction": ...}` in
`prediction.results-K-of-N`, `{"instance": ..., "error": {"status", "message"}}` in
`prediction.errors_stats-K-of-N`. An instance's shard is a stable hash of its key, and each shard is
written whole, lines sorted by key, so a re-run writes the same files.
"""

from __future__ import annotations

import dataclasses
import json
import re
import zlib
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from sr_tf import storage
from sr_tf.batch.config import ERRORS_PREFIX, RESULTS_PREFIX, shard_name

METRICS_NAMESPACE = "sr_tf.batch"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One instance's result: `line` is its JSONL line for the results (ok) or errors file."""

    ok: bool
    key: str
    line: str


@dataclasses.dataclass(frozen=True)
class BatchSummary:
    """What a finished job did. `succeeded` counts results lines (written now or earlier)."""

    succeeded: int
    failed: int
    skipped: int
    results_files: list[str]
    errors_files: list[str]

    def line(self) -> str:
        return f"{self.succeeded} succeeded, {self.failed} failed"


def result_line(instance: Any, prediction_json: str) -> str:
    """`{"instance": ..., "prediction": ...}` with the prediction's JSON text spliced in as is."""
    return '{"instance": ' + json.dumps(instance) + ', "prediction": ' + prediction_json + "}"


def error_line(instance: Any, status: str, message: str) -> str:
    """An errors-file line as Vertex AI batch prediction writes it: `{"instance": ..., "error":
    {"status": "INVALID_ARGUMENT", "message": ...}}` (the status is a google.rpc.Code name)."""
    return json.dumps({"instance": instance, "error": {"status": status, "message": message}})


class WriteShard(beam.DoFn):
    """((ok, shard), [(key, line), ...]) -> writes that shard of the results (ok) or errors file,
    lines sorted by key; yields its URI."""

    def __init__(self, output: str, count: int):
        self.output, self.count = output, count
        self.lines = {True: Metrics.counter(METRICS_NAMESPACE, "result_lines"),
                      False: Metrics.counter(METRICS_NAMESPACE, "error_lines")}

    def process(self, element):
        (ok, shard), pairs = element
        pairs = sorted(pairs)
        text = "".join(line + "\n" for _, line in pairs)
        uri = storage.join(self.output, shard_name(RESULTS_PREFIX if ok else ERRORS_PREFIX, shard, self.count))
        storage.write_bytes(uri, text.encode("utf-8"), "application/jsonl")
        self.lines[ok].inc(len(pairs))
        yield uri


def shard_of(key: str, count: int) -> int:
    """A stable shard for an instance key (the same on every run and worker)."""
    return zlib.crc32(key.encode("utf-8")) % count


def metric_count(result, name: str) -> int:
    from apache_beam.metrics.metric import MetricsFilter

    counters = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE).with_name(name))["counters"]
    total = 0
    for c in counters:
        try:
            total += c.committed or 0
        except Exception:  # runners without committed metrics
            total += c.attempted or 0
    return total


def remove_shards(output: str) -> None:
    """Deletes the results/errors files (any shard count) of an earlier run into `output`."""
    for prefix in (RESULTS_PREFIX, ERRORS_PREFIX):
        pattern = re.compile(re.escape(prefix) + r"-\d{5}-of-\d{5}$")
        for uri in storage.list_with_prefix(storage.join(output, prefix + "-")):
            if pattern.search(uri):
                storage.delete(uri)
