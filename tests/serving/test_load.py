"""Load: `sr-tf serve` in its own process, clients in processes of their own (benchmarks/load_test.py,
whose 60 s, 64-client run this shortens).

One server with `--max-enqueued 6`: first 6 clients (REST row JSON, REST b64 PNG and gRPC, small
and large images), one request in flight each, so never over the limit: every request must be
answered, with the output of its own input; then 18 clients, over it: the excess is refused with
429 / RESOURCE_EXHAUSTED and nothing else fails. The server's RSS must not grow after the warm-up.
Longer: SR_TF_LOAD_SECONDS=30 python -m pytest -q -s tests/serving/test_load.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from serving_helpers import copy_version

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import load_test  # noqa: E402
from machine import describe as machine_line  # noqa: E402

SECONDS = float(os.environ.get("SR_TF_LOAD_SECONDS", "2"))
LIMIT = 6


@pytest.mark.large
def test_clients_in_their_own_processes_under_and_over_the_queue_limit(exported, tmp_path):
    version = copy_version(exported, tmp_path / load_test.MODEL, 1)
    # rounds of three kinds; every second round large (64x64: above --large-request-pixels 1024)
    specs = load_test.client_specs(version, 3 * LIMIT, small=8, large=64, large_every=2)
    with load_test.serve(version.parent, LIMIT, ("--large-request-pixels", "1024")) as (proc, url, target):
        under = load_test.run_load(specs[:LIMIT], url, target, proc.pid, SECONDS, warmup_seconds=1)
        over = load_test.run_load(specs, url, target, proc.pid, SECONDS / 2, warmup_seconds=0.5)
    print(f"\nunder the limit ({LIMIT} clients, --max-enqueued {LIMIT}):\n{under.table()}\n"
          f"over it ({len(specs)} clients):\n{over.table()}\n{machine_line()}")
    assert {k for k, v in under.latencies.items() if v} == {(kind, size) for kind in load_test.KINDS
                                                            for size in (8, 64)}
    # measured: +6 and +8 MiB from warm-up to end (allocators still filling up: benchmarks/load_test.py
    # shows the plateau after ~12 s). Only a gross leak fails here: keeping every REST output grew
    # +19 MiB in these seconds and passed; the benchmark's 60 s after its warm-up is the measure
    assert load_test.check_under_limit(under, max_growth_mib=48) == []
    assert load_test.check_over_limit(over) == []
