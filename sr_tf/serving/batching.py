"""Server-side batching with a bounded queue (TF Serving's `--enable_batching` in miniature).

Concurrent requests for the same servable, signature and per-example input shapes are joined
along axis 0 into batches of at most `max_batch_size` examples, waiting at most
`batch_timeout_micros` for a batch to fill. At most `max_enqueued` requests wait; beyond that a
request is refused with RESOURCE_EXHAUSTED (HTTP 429) instead of growing memory, and after
`close()` new requests get UNAVAILABLE (HTTP 503) while queued ones still finish.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import threading
import time
from collections.abc import Callable

import numpy as np

from sr_tf.serving.errors import Code, ServingError

RunFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class BatchingConfig:
    """Batching options (names follow TF Serving's `BatchingParameters`).

    Attributes:
      enabled: join concurrent requests; when False each request runs alone (still queued/bounded).
      max_batch_size: most examples in one batch.
      batch_timeout_micros: longest wait for a batch to fill.
      num_batch_threads: threads running batches.
      max_enqueued: most requests waiting or running before new ones get 429.
    """

    enabled: bool = False
    max_batch_size: int = 8
    batch_timeout_micros: int = 2000
    num_batch_threads: int = 2
    max_enqueued: int = 64

    def __post_init__(self):
        for field in ("max_batch_size", "num_batch_threads", "max_enqueued"):
            if getattr(self, field) < 1:
                raise ValueError(f"BatchingConfig: `{field}` must be >= 1. Received: {field}={getattr(self, field)!r}")
        if self.batch_timeout_micros < 0:
            raise ValueError(f"BatchingConfig: `batch_timeout_micros` must be >= 0. Received: {self.batch_timeout_micros!r}")


def parse_batching_parameters(text: str, enabled: bool = True) -> BatchingConfig:
    """Reads a TF Serving `--batching_parameters_file` (a `BatchingParameters` text proto)."""
    from sr_tf.serving.protos import parse_text

    proto = parse_text("BatchingParameters", text)
    default = BatchingConfig()

    def get(name, fallback):
        return getattr(proto, name).value if proto.HasField(name) else fallback

    return BatchingConfig(
        enabled=enabled,
        max_batch_size=int(get("max_batch_size", default.max_batch_size)),
        batch_timeout_micros=int(get("batch_timeout_micros", default.batch_timeout_micros)),
        num_batch_threads=int(get("num_batch_threads", default.num_batch_threads)),
        max_enqueued=int(get("max_enqueued_batches", default.max_enqueued)),
    )


@dataclasses.dataclass
class _Task:
    key: tuple
    run: RunFn
    inputs: dict[str, np.ndarray]
    size: int
    future: concurrent.futures.Future
    enqueued: float


def batch_key(owner: object, signature: str, inputs: dict[str, np.ndarray]) -> tuple:
    """Requests with equal keys may share a batch (same servable, signature, example shapes)."""
    return (id(owner), signature, tuple(sorted((k, v.dtype.str, v.shape[1:]) for k, v in inputs.items())))


class BatchScheduler:
    """Runs `run(inputs)` calls on worker threads, joining same-key requests into batches."""

    def __init__(self, config: BatchingConfig | None = None, on_batch: Callable[[int], None] | None = None):
        self.config = config or BatchingConfig()
        self._queues: dict[tuple, collections.deque[_Task]] = collections.OrderedDict()
        self._cond = threading.Condition()
        self._pending = 0
        self._closed = False
        self._on_batch = on_batch
        self._threads = [
            threading.Thread(target=self._worker, name=f"sr-tf-batch-{i}", daemon=True)
            for i in range(self.config.num_batch_threads)
        ]
        for t in self._threads:
            t.start()

    @property
    def pending(self) -> int:
        return self._pending

    def submit(self, key: tuple, run: RunFn, inputs: dict[str, np.ndarray]) -> concurrent.futures.Future:
        """Queues one request; the future resolves to its outputs (or raises ServingError)."""
        sizes = {v.shape[0] if v.ndim else -1 for v in inputs.values()}
        batchable = self.config.enabled and len(sizes) == 1 and min(sizes) >= 1
        size = sizes.pop() if batchable else 1
        task = _Task(key if batchable else ("solo", id(inputs)), run, inputs, size,
                     concurrent.futures.Future(), time.monotonic())
        with self._cond:
            if self._closed:
                raise ServingError(Code.UNAVAILABLE, "The server is shutting down")
            if self._pending >= self.config.max_enqueued:
                raise ServingError(
                    Code.RESOURCE_EXHAUSTED,
                    f"The batch queue is full ({self.config.max_enqueued} requests waiting); retry later",
                )
            self._pending += 1
            self._queues.setdefault(task.key, collections.deque()).append(task)
            self._cond.notify()
        return task.future

    def close(self, timeout: float = 30.0) -> None:
        """Refuses new requests, lets queued ones finish, then stops the workers."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout)

    def _take_batch(self) -> list[_Task] | None:
        """Under the lock: the next batch to run, waiting for it to fill up to the timeout."""
        timeout = self.config.batch_timeout_micros / 1e6
        while True:
            if not self._queues:
                if self._closed:
                    return None
                self._cond.wait()
                continue
            key, queue = next(iter(self._queues.items()))
            total = sum(t.size for t in queue)
            waited = time.monotonic() - queue[0].enqueued
            if total < self.config.max_batch_size and waited < timeout and not self._closed and key[0] != "solo":
                self._cond.wait(timeout - waited)
                continue
            batch, count = [], 0
            while queue and (not batch or count + queue[0].size <= self.config.max_batch_size):
                task = queue.popleft()
                if not task.future.set_running_or_notify_cancel():  # its client gave up (timeout)
                    self._pending -= 1
                    continue
                batch.append(task)
                count += task.size
            if not queue:
                del self._queues[key]
            else:  # the rest goes to the back so other keys get a turn
                self._queues.move_to_end(key)
            if batch:
                return batch

    def _worker(self) -> None:
        while True:
            with self._cond:
                batch = self._take_batch()
            if batch is None:
                return
            try:
                self._run(batch)
            finally:
                with self._cond:
                    self._pending -= len(batch)

    def _run(self, batch: list[_Task]) -> None:
        if self._on_batch is not None:
            self._on_batch(sum(t.size for t in batch))
        try:
            if len(batch) == 1:
                outputs = batch[0].run(batch[0].inputs)
                batch[0].future.set_result(outputs)
                return
            names = batch[0].inputs.keys()
            joined = {k: np.concatenate([t.inputs[k] for t in batch]) for k in names}
            outputs = batch[0].run(joined)
            total = sum(t.size for t in batch)
            for k, v in outputs.items():
                if v.ndim == 0 or v.shape[0] != total:
                    raise ServingError(Code.INTERNAL, f"Output {k!r} is not batched along axis 0; cannot split a batch")
            start = 0
            for t in batch:
                t.future.set_result({k: v[start:start + t.size] for k, v in outputs.items()})
                start += t.size
        except BaseException as err:  # every waiting request gets the error
            for t in batch:
                if not t.future.done():
                    t.future.set_exception(err)
