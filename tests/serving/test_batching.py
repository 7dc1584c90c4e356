"""The batch scheduler: joins same-shape requests, splits results back, bounds its queue."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from sr_tf.serving.batching import (
    BatchingConfig,
    BatchScheduler,
    batch_key,
    parse_batching_parameters,
)
from sr_tf.serving.errors import Code, ServingError


def _blocking_run(gate: threading.Event, calls: list):
    def run(inputs):
        calls.append(inputs["x"].shape[0])
        gate.wait(10)
        return {"y": inputs["x"] * 2 + 1}
    return run


def test_concurrent_same_shape_requests_share_a_batch_and_get_their_own_rows():
    gate, calls = threading.Event(), []
    run = _blocking_run(gate, calls)
    sched = BatchScheduler(BatchingConfig(enabled=True, max_batch_size=4, batch_timeout_micros=0, num_batch_threads=1))
    xs = [np.full((1, 2), i, np.float32) for i in range(5)]
    futures = [sched.submit(batch_key("m", "s", {"x": xs[0]}), run, {"x": xs[0]})]
    while not calls:  # the worker is now busy with the first request
        threading.Event().wait(0.001)
    futures += [sched.submit(batch_key("m", "s", {"x": x}), run, {"x": x}) for x in xs[1:]]
    gate.set()
    outs = [f.result(10)["y"] for f in futures]
    assert calls == [1, 4]  # the four waiting requests ran as one batch
    for x, y in zip(xs, outs, strict=True):
        np.testing.assert_array_equal(y, x * 2 + 1)
    sched.close()


def test_different_shapes_are_not_joined():
    gate, calls = threading.Event(), []
    gate.set()
    sched = BatchScheduler(BatchingConfig(enabled=True, max_batch_size=8, batch_timeout_micros=50_000))
    a, b = np.zeros((1, 2), np.float32), np.zeros((1, 3), np.float32)
    fa = sched.submit(batch_key("m", "s", {"x": a}), _blocking_run(gate, calls), {"x": a})
    fb = sched.submit(batch_key("m", "s", {"x": b}), _blocking_run(gate, calls), {"x": b})
    assert fa.result(10)["y"].shape == (1, 2) and fb.result(10)["y"].shape == (1, 3)
    assert sorted(calls) == [1, 1]
    sched.close()


def test_full_queue_answers_resource_exhausted_and_closed_answers_unavailable():
    gate, calls = threading.Event(), []
    sched = BatchScheduler(BatchingConfig(enabled=False, num_batch_threads=1, max_enqueued=2))
    x = np.zeros((1, 2), np.float32)
    first = sched.submit(("k",), _blocking_run(gate, calls), {"x": x})
    second = sched.submit(("k",), _blocking_run(gate, calls), {"x": x})
    with pytest.raises(ServingError) as err:
        sched.submit(("k",), _blocking_run(gate, calls), {"x": x})
    assert err.value.code is Code.RESOURCE_EXHAUSTED and err.value.code.http_status == 429
    gate.set()
    sched.close()
    assert first.result(10)["y"].shape == (1, 2) and second.done()  # queued work still finished
    with pytest.raises(ServingError) as err:
        sched.submit(("k",), _blocking_run(gate, calls), {"x": x})
    assert err.value.code is Code.UNAVAILABLE and err.value.code.http_status == 503


def test_an_answered_request_no_longer_counts_against_the_queue():
    # a client sending its next request the moment it hears back (here: from the answer's callback,
    # the earliest moment there is) must find room, or a queue as long as the clients refuses some
    gate, calls = threading.Event(), []
    sched = BatchScheduler(BatchingConfig(max_enqueued=1, num_batch_threads=1))
    x = {"x": np.zeros((1, 2), np.float32)}
    first = sched.submit(("k",), _blocking_run(gate, calls), x)
    following = []

    def send_next(_):
        try:
            following.append(sched.submit(("k",), _blocking_run(gate, calls), x))
        except ServingError as err:
            following.append(err)

    first.add_done_callback(send_next)  # before the answer: the gate holds the model call
    gate.set()
    first.result(10)
    assert not isinstance(following[0], ServingError), following[0]
    following[0].result(10)
    assert sched.pending == 0
    sched.close()


def test_a_failing_batch_fails_each_request():
    def boom(inputs):
        raise ServingError(Code.INTERNAL, "model exploded")

    sched = BatchScheduler(BatchingConfig(enabled=True))
    f = sched.submit(("k",), boom, {"x": np.zeros((1, 1))})
    with pytest.raises(ServingError, match="exploded"):
        f.result(10)
    sched.close()


def test_batching_parameters_text_proto():
    config = parse_batching_parameters(
        "max_batch_size { value: 16 }\nbatch_timeout_micros { value: 500 }\n"
        "num_batch_threads { value: 3 }\nmax_enqueued_batches { value: 100 }\npad_variable_length_inputs: false\n"
    )
    assert (config.max_batch_size, config.batch_timeout_micros, config.num_batch_threads, config.max_enqueued) == (
        16, 500, 3, 100)
    with pytest.raises(ValueError, match="max_batch_size"):
        parse_batching_parameters("max_batch_size: 16")  # a wrapper message, not a scalar


def test_requests_given_up_while_queued_are_skipped():
    gate, calls = threading.Event(), []
    run = _blocking_run(gate, calls)
    sched = BatchScheduler(BatchingConfig(enabled=True, max_batch_size=4, batch_timeout_micros=0, num_batch_threads=1))
    x = np.ones((1, 2), np.float32)
    first = sched.submit(batch_key("m", "s", {"x": x}), run, {"x": x})
    while not calls:
        threading.Event().wait(0.001)
    dropped = sched.submit(batch_key("m", "s", {"x": x}), run, {"x": x})
    kept = sched.submit(batch_key("m", "s", {"x": x * 3}), run, {"x": x * 3})
    assert dropped.cancel()  # what a client-side timeout does to a queued request
    gate.set()
    np.testing.assert_array_equal(kept.result(10)["y"], x * 3 * 2 + 1)
    assert first.result(10)["y"].shape == (1, 2) and calls == [1, 1] and sched.pending == 0
    sched.close()


def test_large_requests_leave_a_thread_for_small_ones():
    gate, calls = threading.Event(), []
    run = _blocking_run(gate, calls)
    sched = BatchScheduler(BatchingConfig(enabled=False, num_batch_threads=2, large_request_pixels=100))
    big, small = np.zeros((1, 2), np.float32), np.ones((1, 2), np.float32)
    larges = [sched.submit(("k",), run, {"x": big}, cost=1000) for _ in range(2)]
    while len(calls) < 1:
        threading.Event().wait(0.001)
    done = threading.Event()
    quick = sched.submit(("k",), lambda x: (done.set(), {"y": x["x"]})[1], {"x": small}, cost=10)
    assert done.wait(5), "the small request waited behind the large ones"
    np.testing.assert_array_equal(quick.result(1)["y"], small)
    assert len(calls) == 1  # the second large request still waits for the first
    gate.set()
    for f in larges:
        f.result(10)
    sched.close()


def test_cancelled_request_leaves_the_queue_at_once_and_never_runs():
    gate, calls = threading.Event(), []
    run = _blocking_run(gate, calls)
    sched = BatchScheduler(BatchingConfig(enabled=False, num_batch_threads=1, max_enqueued=2))
    x = np.zeros((1, 2), np.float32)
    first = sched.submit(("k",), run, {"x": x})
    while not calls:
        threading.Event().wait(0.001)
    second = sched.submit(("k",), run, {"x": x + 5})
    assert sched.pending == 2
    assert second.cancel()  # its client went away before it started
    assert sched.pending == 1  # the queue slot is free now, not when a worker gets to it
    third = sched.submit(("k",), run, {"x": x + 7})
    gate.set()
    first.result(10)
    np.testing.assert_array_equal(third.result(10)["y"], (x + 7) * 2 + 1)
    assert len(calls) == 2  # the cancelled request never ran
    sched.close()


def test_abort_answers_queued_and_running_requests():
    gate, calls = threading.Event(), []
    sched = BatchScheduler(BatchingConfig(enabled=False, num_batch_threads=1))
    x = np.zeros((1, 2), np.float32)
    running = sched.submit(("k",), _blocking_run(gate, calls), {"x": x})
    while not calls:
        threading.Event().wait(0.001)
    queued = sched.submit(("k",), _blocking_run(gate, calls), {"x": x})
    assert sched.abort(ServingError(Code.UNAVAILABLE, "shutting down")) == 2
    for f in (running, queued):
        with pytest.raises(ServingError, match="shutting down"):
            f.result(1)
    gate.set()
    assert sched.close(10)
