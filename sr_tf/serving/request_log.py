"""Request logging as TF Serving configures it: a model's `logging_config` in the model config file
samples requests and writes each sampled request with its response as a `PredictionLog`
(tensorflow_serving/apis/prediction_log.proto) record in TFRecord files:

    config {
      name: "sr" base_path: "/models/sr" model_platform: "tensorflow"
      logging_config {
        log_collector_config { type: "tfrecord" filename_prefix: "/logs/sr/requests" }
        sampling_config { sampling_rate: 0.01 }
      }
    }

Each request is sampled independently with probability `sampling_rate`. Records go to
`{filename_prefix}-{start time ms}-{sequence:05d}.tfrecord`; a file that would grow past
`max_file_bytes` is closed and the next one started. Records are built and written on a background
thread from a bounded queue, so logging never delays or fails a request: when the queue is full or
a write fails (a full disk, a folder that cannot be written), the record is dropped and counted in
`sr_tf_serving_request_logs_dropped_total{model_name, reason}` ("queue_full", "write_error");
written records are counted in `sr_tf_serving_request_logs_written_total{model_name}`. Failed
requests are not logged. Open-source TF Serving registers no log collector of its own; this one is
`type: "tfrecord"` (or empty).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import queue
import random
import threading
import time

from sr_tf.config import ConfigBase

log = logging.getLogger("sr_tf.serving")
COLLECTOR_TYPES = ("", "tfrecord")


@dataclasses.dataclass(frozen=True)
class RequestLogging(ConfigBase):
    """One model's `logging_config`.

    Attributes:
      filename_prefix: path prefix of the TFRecord files (`log_collector_config.filename_prefix`).
      sampling_rate: probability in [0, 1] that a request is logged (`sampling_config.sampling_rate`).
      collector_type: `log_collector_config.type`: "tfrecord" or "".
    """

    filename_prefix: str
    sampling_rate: float
    collector_type: str = "tfrecord"

    def __post_init__(self):
        if not 0.0 <= self.sampling_rate <= 1.0:
            raise ValueError(f"RequestLogging: `sampling_rate` must be in [0, 1]. Received: {self.sampling_rate!r}")
        if not self.filename_prefix:
            raise ValueError("RequestLogging: `filename_prefix` must name where the logs go.")
        if self.collector_type not in COLLECTOR_TYPES:
            raise ValueError(f"RequestLogging: unknown log collector `collector_type`={self.collector_type!r}; "
                             "this server writes TFRecord files (type \"tfrecord\").")


def from_proto(proto) -> RequestLogging | None:
    """A `RequestLogging` from a `ModelConfig.logging_config` proto, or None when it is unset."""
    collector = proto.log_collector_config
    if not collector.filename_prefix and not collector.type and not proto.sampling_config.sampling_rate:
        return None
    return RequestLogging(collector.filename_prefix, proto.sampling_config.sampling_rate, collector.type)


class _RotatingWriter:
    """TFRecord files of one prefix, each kept under `max_bytes` (unless one record is larger)."""

    def __init__(self, prefix: str, max_bytes: int):
        self.prefix, self.max_bytes = prefix, max_bytes
        self.started = int(time.time() * 1000)
        self.sequence, self.size, self._writer = 0, 0, None

    def write(self, record: bytes) -> None:
        import tensorflow as tf

        framed = len(record) + 16  # length, its CRC, the data, its CRC
        if self._writer is not None and self.size + framed > self.max_bytes:
            self.close()
        if self._writer is None:
            import os

            folder = os.path.dirname(self.prefix)
            if folder:
                tf.io.gfile.makedirs(folder)
            self.sequence += 1
            self._writer = tf.io.TFRecordWriter(f"{self.prefix}-{self.started}-{self.sequence:05d}.tfrecord")
            self.size = 0
        self._writer.write(record)
        self._writer.flush()  # a full disk shows here, for this record
        self.size += framed

    def close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()


class RequestLogger:
    """Samples predict calls and writes them as `PredictionLog` TFRecords on a background thread.

    Args:
      lookup: model name -> its `RequestLogging` (or None: not logged), asked per request.
      registry: the Prometheus registry for the written/dropped counters.
      saved_model_tags: recorded in each record's `log_metadata`.
      max_file_bytes: size at which a log file is closed and the next one begun.
      queue_size: records waiting to be written before new ones are dropped.
      seed: seeds the sampling (None: random).
    """

    def __init__(self, lookup, registry=None, saved_model_tags: tuple[str, ...] = ("serve",),
                 max_file_bytes: int = 64 << 20, queue_size: int = 256, seed: int | None = None):
        from prometheus_client import Counter

        if max_file_bytes < 1:
            raise ValueError(f"RequestLogger: `max_file_bytes` must be >= 1. Received: {max_file_bytes!r}")
        self.lookup = lookup
        self.tags = tuple(saved_model_tags)
        self.max_file_bytes = max_file_bytes
        self._random = random.Random(seed)
        self._queue: queue.Queue = queue.Queue(queue_size)
        self._writers: dict[str, _RotatingWriter] = {}
        kwargs = {"registry": registry} if registry is not None else {}
        self.written = Counter("sr_tf_serving_request_logs_written", "Sampled requests written to the request log.",
                               ["model_name"], **kwargs)
        self.dropped = Counter("sr_tf_serving_request_logs_dropped",
                               "Sampled requests not logged (queue_full, write_error).",
                               ["model_name", "reason"], **kwargs)
        self._thread = threading.Thread(target=self._run, name="sr-tf-request-log", daemon=True)
        self._thread.start()

    def maybe_log(self, servable, signature_name: str, inputs: dict, future: concurrent.futures.Future) -> None:
        """Samples one queued request; when chosen, its record is queued once the future succeeds."""
        config = self.lookup(servable.name)
        if config is None or config.sampling_rate <= 0 or self._random.random() >= config.sampling_rate:
            return
        stamp = time.time()

        def done(f: concurrent.futures.Future):
            if f.cancelled() or f.exception() is not None:
                return
            item = (config, servable.name, servable.version, signature_name, inputs, f.result(), stamp)
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                self.dropped.labels(servable.name, "queue_full").inc()

        future.add_done_callback(done)

    def record(self, config: RequestLogging, name: str, version: int, signature_name: str,
               inputs: dict, outputs: dict, stamp: float) -> bytes:
        """One serialized `PredictionLog` (log_metadata + predict_log request and response)."""
        import tensorflow as tf
        from tensorflow_serving.apis import prediction_log_pb2

        entry = prediction_log_pb2.PredictionLog()
        meta = entry.log_metadata
        meta.model_spec.name, meta.model_spec.version.value = name, version
        meta.model_spec.signature_name = signature_name
        meta.sampling_config.sampling_rate = config.sampling_rate
        meta.saved_model_tags.extend(self.tags)
        meta.timestamp_secs = int(stamp)
        request, response = entry.predict_log.request, entry.predict_log.response
        request.model_spec.CopyFrom(meta.model_spec)
        response.model_spec.CopyFrom(meta.model_spec)
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return entry.SerializeToString()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                config, name = item[0], item[1]
                try:
                    data = self.record(*item)
                    writer = self._writers.get(config.filename_prefix)
                    if writer is None:
                        writer = self._writers[config.filename_prefix] = _RotatingWriter(
                            config.filename_prefix, self.max_file_bytes)
                    writer.write(data)
                    self.written.labels(name).inc()
                except Exception as err:  # a full disk, a folder that cannot be written: drop, go on
                    self.dropped.labels(name, "write_error").inc()
                    log.warning("Request log %s: record dropped (%s)", config.filename_prefix,
                                str(err).splitlines()[0] if str(err) else type(err).__name__)
                    writer = self._writers.pop(config.filename_prefix, None)
                    if writer is not None:
                        try:
                            writer.close()
                        except Exception:  # the file is lost already
                            pass
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        """Waits until every queued record is written or dropped."""
        self._queue.join()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(30)
        for writer in self._writers.values():
            try:
                writer.close()
            except Exception:
                pass
        self._writers.clear()
