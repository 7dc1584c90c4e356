"""Verify-before-reuse for a batch job's outputs (local or `gs://`).

Each output the job writes gets a record of its size and SHA-256, written after it, at
`OUTPUT/.sr-tf-batch-records/REL.json` (REL: the output's name under OUTPUT; the hidden folder
keeps the records out of the outputs' own folders). A re-run keeps an existing output only when it
matches its record; one that does not (truncated or altered after it was written, or written by a
run killed before its record) is computed again, and a damaged one is logged by name.
"""

from __future__ import annotations

import json
import logging
import os

from sr_tf import storage
from sr_tf.integrity import bytes_record, check_bytes, check_file, file_record

RECORDS = ".sr-tf-batch-records"
log = logging.getLogger(__name__)


def record_uri(output_root: str | None, uri: str) -> str:
    """Where the record of the output `uri` goes: under `output_root`'s records folder, or beside
    `uri` (`URI.json`) when `output_root` is None (work files in a folder of their own, e.g. video parts)."""
    if output_root is None:
        return uri + ".json"
    root = output_root.rstrip("/") + "/"
    if storage.is_gcs(uri):
        rel = uri[len(root):] if uri.startswith(root) else None
    else:
        rel = os.path.relpath(uri, output_root)
        rel = None if rel.startswith("..") else rel
    if rel is None:  # not under the output folder
        return uri + ".json"
    return storage.join(output_root, f"{RECORDS}/{rel}.json")


def _write_record(output_root: str | None, uri: str, record: dict) -> None:
    storage.write_bytes(record_uri(output_root, uri), json.dumps(record).encode(), "application/json")


def write_output(output_root: str | None, uri: str, data: bytes, content_type: str | None = None) -> None:
    """Writes an output (`storage.write_bytes`: complete or absent), then its record."""
    storage.write_bytes(uri, data, content_type)
    _write_record(output_root, uri, bytes_record(data))


def record_upload(output_root: str | None, uri: str, local: str) -> None:
    """Records an output just put at `uri` from the local file `local` (same bytes)."""
    _write_record(output_root, uri, file_record(local))


def output_problem(output_root: str | None, uri: str) -> str | None:
    """None when the existing output `uri` matches its record; else what is wrong ("missing",
    "not recorded", "truncated: ...", "corrupt: ..."). Reads the whole output (a GCS object
    into memory)."""
    try:
        record = json.loads(storage.read_text(record_uri(output_root, uri)))
    except FileNotFoundError:
        return "not recorded" if storage.exists(uri) else "missing"
    except ValueError:
        return "not recorded"
    if not isinstance(record, dict) or not isinstance(record.get("bytes"), int) or "sha256" not in record:
        return "not recorded"
    if not storage.is_gcs(uri):
        return check_file(uri, record)
    try:
        return check_bytes(storage.read_bytes(uri), record)
    except FileNotFoundError:
        return "missing"


def reusable(output_root: str | None, uri: str) -> bool:
    """Whether an earlier run's output can be kept; logs a damaged one by name (it is then redone)."""
    problem = output_problem(output_root, uri)
    if problem not in (None, "missing", "not recorded"):
        log.warning("%s: output of an earlier run is %s; computing it again", uri, problem)
    return problem is None
