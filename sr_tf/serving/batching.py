"""Server-side batching with a bounded queue (TF Serving's `--enable_batching` in miniature).

Concurrent requests for the same servable, signature and per-example input shapes are joined
along axis 0 into batches of at most `max_batch_size` examples, waiting at most
`batch_timeout_micros` for a batch to fill. At most `max_enqueued` requests wait; beyond that a
request is refused with RESOURCE_EXHAUSTED (HTTP 429) instead of growing memory, and after
`close()` new requests get UNAVAILABLE (HTTP 503) while queued ones still finish.

Fairness: each request carries a cost (its input pixels). Requests above `large_request_pixels`
may occupy at most `num_batch_threads - 1` threads at once, so with two or more threads one is
always free for small requests and a few large ones cannot starve them. A request whose client
gave up (its future cancelled: disconnect, deadline) is dropped from the queue at once.

Per-model parameters (`--enable_per_model_batching_parameters`, TF Serving's
`GetPerModelBatchingParams` in servables/tensorflow/bundle_factory_util.cc): a request may carry its
model's own `BatchingConfig`; its queue then forms batches with that config's `max_batch_size`,
`batch_timeout_micros` and `max_enqueued`, while the worker threads stay the server's (one pool
shared by every model, as in TF Serving). See `model_batching`.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable

import numpy as np

from sr_tf.config import ConfigBase
from sr_tf.serving.errors import Code, ServingError

log = logging.getLogger("sr_tf.serving")
RunFn = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class BatchingConfig(ConfigBase):
    """Batching options (names follow TF Serving's `BatchingParameters`).

    Attributes:
      enabled: join concurrent requests; when False each request runs alone (still queued/bounded).
      max_batch_size: most examples in one batch.
      batch_timeout_micros: longest wait for a batch to fill.
      num_batch_threads: threads running batches.
      max_enqueued: most requests waiting or running before new ones get 429.
      large_request_pixels: requests with more input pixels count as large (see the module
        docstring); 0 treats every request alike.
      allowed_batch_sizes / pad_variable_length_inputs / enable_large_batch_splitting /
        max_execution_batch_size / thread_pool_name: the other `BatchingParameters` fields, kept
        as read. Batches here never pad (padding would change an SR model's output near the
        padded edges), only join requests whose shapes match, and run at the size they have.
    """

    enabled: bool = False
    max_batch_size: int = 8
    batch_timeout_micros: int = 2000
    num_batch_threads: int = 2
    max_enqueued: int = 64
    large_request_pixels: int = 128 * 128
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int | None = None
    thread_pool_name: str = ""

    def __post_init__(self):
        for field in ("max_batch_size", "num_batch_threads", "max_enqueued"):
            if getattr(self, field) < 1:
                raise ValueError(f"BatchingConfig: `{field}` must be >= 1. Received: {field}={getattr(self, field)!r}")
        if self.batch_timeout_micros < 0:
            raise ValueError(f"BatchingConfig: `batch_timeout_micros` must be >= 0. Received: {self.batch_timeout_micros!r}")
        if self.large_request_pixels < 0:
            raise ValueError(f"BatchingConfig: `large_request_pixels` must be >= 0. Received: {self.large_request_pixels!r}")
        sizes = list(self.allowed_batch_sizes)
        if sizes and (sizes != sorted(set(sizes)) or sizes[-1] != self.max_batch_size):
            # TF Serving's own rule (session_bundle_config.proto)
            raise ValueError(
                "BatchingConfig: `allowed_batch_sizes` must increase and end with `max_batch_size`. "
                f"Received: allowed_batch_sizes={sizes}, max_batch_size={self.max_batch_size}"
            )


def parse_batching_parameters(text: str, enabled: bool = True,
                              default: BatchingConfig | None = None) -> BatchingConfig:
    """Reads a TF Serving `--batching_parameters_file` (a `BatchingParameters` text proto, every
    field); fields the file leaves out keep `default`'s values."""
    from sr_tf.serving.protos import parse_text

    proto = parse_text("BatchingParameters", text)
    default = default or BatchingConfig()

    def get(name, fallback):
        return getattr(proto, name).value if proto.HasField(name) else fallback

    if proto.pad_variable_length_inputs:
        log.warning("pad_variable_length_inputs is ignored: this server only joins requests whose "
                    "images have the same size (padding would change the model's output near the edges)")
    try:
        return BatchingConfig(
            enabled=enabled,
            max_batch_size=int(get("max_batch_size", default.max_batch_size)),
            batch_timeout_micros=int(get("batch_timeout_micros", default.batch_timeout_micros)),
            num_batch_threads=int(get("num_batch_threads", default.num_batch_threads)),
            max_enqueued=int(get("max_enqueued_batches", default.max_enqueued)),
            large_request_pixels=default.large_request_pixels,
            allowed_batch_sizes=tuple(int(v) for v in proto.allowed_batch_sizes),
            pad_variable_length_inputs=bool(proto.pad_variable_length_inputs),
            enable_large_batch_splitting=bool(get("enable_large_batch_splitting", False)),
            max_execution_batch_size=int(proto.max_execution_batch_size.value)
            if proto.HasField("max_execution_batch_size") else None,
            thread_pool_name=str(get("thread_pool_name", "")),
        )
    except ValueError as err:
        raise ValueError(f"Invalid batching parameters: {err}") from None


def model_batching(version_dir: str, server: BatchingConfig, per_model: bool) -> BatchingConfig | None:
    """The batching of one model version, as TF Serving's `GetPerModelBatchingParams` decides it.

    With `per_model` (both `--enable_batching` and `--enable_per_model_batching_parameters`) and a
    `batching_params.pbtxt` in `version_dir`, that file's `BatchingParameters`: the fields it
    leaves out take `BatchingConfig`'s defaults, not the server-wide file's values (TF Serving
    ignores those), except the thread pool (`num_batch_threads`, `thread_pool_name`) and
    `large_request_pixels`, which stay the server's because the threads are shared by every model.
    With `per_model` and no such file the model is not batched (TF Serving wraps its session
    without batching); its requests still pass the server's bounded queue one at a time. Without
    `per_model`: None, i.e. the server-wide `server`.

    Raises:
      ValueError: the file is no valid `BatchingParameters`; the message names the file, and the
        version fails to load (as in TF Serving).
    """
    if not (per_model and server.enabled):
        return None
    import tensorflow as tf

    from sr_tf.export import BATCHING_PARAMS_FILE

    path = os.path.join(version_dir, BATCHING_PARAMS_FILE)
    if not tf.io.gfile.exists(path):
        return dataclasses.replace(server, enabled=False)
    try:
        with tf.io.gfile.GFile(path) as f:
            text = f.read()
        default = dataclasses.replace(BatchingConfig(), num_batch_threads=server.num_batch_threads,
                                      large_request_pixels=server.large_request_pixels)
        own = parse_batching_parameters(text, True, default)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: {err}") from None
    if own.num_batch_threads != server.num_batch_threads or own.thread_pool_name != server.thread_pool_name:
        log.info("%s: num_batch_threads and thread_pool_name are the server's (the batch threads are shared "
                 "by every model, as in TF Serving)", path)
    return dataclasses.replace(own, num_batch_threads=server.num_batch_threads,
                               thread_pool_name=server.thread_pool_name)


@dataclasses.dataclass(eq=False)
class _Task:
    key: tuple
    run: RunFn
    inputs: dict[str, np.ndarray]
    size: int
    future: concurrent.futures.Future
    enqueued: float
    large: bool = False
    options: BatchingConfig | None = None  # how its queue batches: its model's or the scheduler's config


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
        self._running: set[_Task] = set()
        self._large_running = 0
        self._large_limit = max(1, self.config.num_batch_threads - 1)
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

    def submit(self, key: tuple, run: RunFn, inputs: dict[str, np.ndarray],
               cost: int = 0, options: BatchingConfig | None = None) -> concurrent.futures.Future:
        """Queues one request; the future resolves to its outputs (or raises ServingError).

        `cost` is the request's input pixels (see `BatchingConfig.large_request_pixels`).
        `options`: the model's own batching (`model_batching`): whether and how its requests are
        joined (`enabled`, `max_batch_size`, `batch_timeout_micros`) and how many of them may wait
        (`max_enqueued`); None uses the scheduler's config. Requests with different `options`
        never share a batch. The scheduler's `max_enqueued` bounds all requests together.
        Cancelling the future before the request starts drops it from the queue.
        """
        opts = self.config if options is None else options
        sizes = {v.shape[0] if v.ndim else -1 for v in inputs.values()}
        batchable = opts.enabled and len(sizes) == 1 and min(sizes) >= 1
        size = sizes.pop() if batchable else 1
        large = 0 < self.config.large_request_pixels < cost
        task = _Task(key if batchable else ("solo", id(inputs)), run, inputs, size,
                     concurrent.futures.Future(), time.monotonic(), large, opts)
        # a large request never shares a queue with small ones, so a queue's head tells its kind
        task.key = (*task.key, large, id(opts))
        with self._cond:
            if self._closed:
                raise ServingError(Code.UNAVAILABLE, "The server is shutting down")
            if self._pending >= self.config.max_enqueued:
                raise ServingError(
                    Code.RESOURCE_EXHAUSTED,
                    f"The batch queue is full ({self.config.max_enqueued} requests waiting); retry later",
                )
            if options is not None and self._pending_with(options) >= options.max_enqueued:
                raise ServingError(
                    Code.RESOURCE_EXHAUSTED,
                    f"The model's batch queue is full ({options.max_enqueued} requests waiting, its "
                    "max_enqueued_batches); retry later",
                )
            self._pending += 1
            self._queues.setdefault(task.key, collections.deque()).append(task)
            self._cond.notify_all()
        task.future.add_done_callback(lambda f: f.cancelled() and self._drop(task))
        return task.future

    def _pending_with(self, options: BatchingConfig) -> int:
        """Under the lock: requests queued or running with these options (at most `max_enqueued`
        of the scheduler's, so counting them is cheap)."""
        return sum(t.options is options for q in self._queues.values() for t in q) + \
            sum(t.options is options for t in self._running)

    def _drop(self, task: _Task) -> None:
        """A cancelled request still in its queue leaves it now (not when a worker reaches it)."""
        with self._cond:
            queue = self._queues.get(task.key)
            if queue is not None and task in queue:
                queue.remove(task)
                self._pending -= 1
                if not queue:
                    del self._queues[task.key]
                self._cond.notify_all()

    def stop_intake(self) -> None:
        """New requests get UNAVAILABLE from now on; queued ones still run."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def close(self, timeout: float = 30.0) -> bool:
        """Refuses new requests, lets queued ones finish, then stops the workers.

        Returns True when every worker stopped within `timeout` (False: a model call still runs).
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def abort(self, error: ServingError) -> int:
        """Answers every queued and running request with `error` now (shutdown past its grace
        period); running model calls go on but their results are dropped. Returns how many."""
        with self._cond:
            self._closed = True
            tasks = [t for q in self._queues.values() for t in q] + list(self._running)
            self._pending -= sum(len(q) for q in self._queues.values())
            self._queues.clear()
            self._cond.notify_all()
        answered = 0
        for t in tasks:
            answered += _settle(t.future, error=error)
        return answered

    def _take_batch(self) -> list[_Task] | None:
        """Under the lock: the next batch to run, waiting for it to fill up to the timeout."""
        while True:
            if not self._queues and self._closed:
                return None
            key, wait = None, None
            now = time.monotonic()
            for k, queue in self._queues.items():
                if queue[0].large and self._large_running >= self._large_limit:
                    continue  # keep a thread for small requests
                total = sum(t.size for t in queue)
                waited = now - queue[0].enqueued
                timeout = queue[0].options.batch_timeout_micros / 1e6  # one options object per queue
                if total < queue[0].options.max_batch_size and waited < timeout and not self._closed \
                        and k[0] != "solo":
                    wait = timeout - waited if wait is None else min(wait, timeout - waited)
                    continue
                key = k
                break
            if key is None:
                self._cond.wait(wait)
                continue
            queue = self._queues[key]
            batch, count, limit = [], 0, queue[0].options.max_batch_size
            while queue and (not batch or count + queue[0].size <= limit):
                task = queue.popleft()
                if not task.future.set_running_or_notify_cancel():  # its client gave up
                    self._pending -= 1
                    continue
                batch.append(task)
                count += task.size
            if not queue:
                del self._queues[key]
            else:  # the rest goes to the back so other keys get a turn
                self._queues.move_to_end(key)
            if batch:
                self._running.update(batch)
                self._large_running += batch[0].large
                return batch

    def _worker(self) -> None:
        while True:
            with self._cond:
                batch = self._take_batch()
            if batch is None:
                return
            answers = []
            try:
                answers = self._run(batch)
            finally:
                # the batch stops counting as pending before its clients hear back: a client that
                # sends its next request at once finds the room its last one left (else a queue
                # exactly as long as the clients refuses some of them)
                with self._cond:
                    self._pending -= len(batch)
                    self._running.difference_update(batch)
                    self._large_running -= batch[0].large
                    self._cond.notify_all()
                for task, result, error in answers:
                    _settle(task.future, result=result, error=error)

    def _run(self, batch: list[_Task]) -> list[tuple[_Task, dict | None, BaseException | None]]:
        """Runs one batch; returns each task's (task, outputs, None) or (task, None, error)."""
        if self._on_batch is not None:
            self._on_batch(sum(t.size for t in batch))
        try:
            if len(batch) == 1:
                return [(batch[0], batch[0].run(batch[0].inputs), None)]
            names = batch[0].inputs.keys()
            joined = {k: np.concatenate([t.inputs[k] for t in batch]) for k in names}
            outputs = batch[0].run(joined)
            total = sum(t.size for t in batch)
            for k, v in outputs.items():
                if v.ndim == 0 or v.shape[0] != total:
                    raise ServingError(Code.INTERNAL, f"Output {k!r} is not batched along axis 0; cannot split a batch")
            answers, start = [], 0
            for t in batch:
                answers.append((t, {k: v[start:start + t.size] for k, v in outputs.items()}, None))
                start += t.size
            return answers
        except BaseException as err:  # every waiting request gets the error
            return [(t, None, err) for t in batch]


def _settle(future: concurrent.futures.Future, result=None, error: BaseException | None = None) -> bool:
    """Sets a future's result or error unless it is already done (answered at shutdown)."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
        return True
    except concurrent.futures.InvalidStateError:
        return False
