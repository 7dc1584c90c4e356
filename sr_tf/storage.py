"""Files on local disk or Google Cloud Storage, addressed by one URI string.

`gs://bucket/name` goes through `google-cloud-storage` (which honours `STORAGE_EMULATOR_HOST`:
set it to `http://host:port` to talk to an emulator); anything else is a local path. Writes never
show a half-written file under its final name: a GCS object appears only when its upload is
complete, and a local file is written to a hidden temporary sibling and renamed into place.
"""

from __future__ import annotations

import fnmatch
import threading
from pathlib import Path

from sr_tf.integrity import atomic_write_bytes

GCS_PREFIX = "gs://"
_GLOB_CHARS = "*?["
_client = None
_client_lock = threading.Lock()


def is_gcs(uri: str) -> bool:
    return str(uri).startswith(GCS_PREFIX)


def split_gcs(uri: str) -> tuple[str, str]:
    """`gs://bucket/a/b` -> ("bucket", "a/b"). Raises ValueError without a bucket."""
    rest = str(uri)[len(GCS_PREFIX):]
    bucket, _, name = rest.partition("/")
    if not bucket:
        raise ValueError(f"A GCS URI needs a bucket: gs://BUCKET/NAME. Received: uri={uri!r}")
    return bucket, name


def client():
    """The process's `google.cloud.storage.Client` (anonymous when `STORAGE_EMULATOR_HOST` is set)."""
    global _client
    with _client_lock:
        if _client is None:
            try:
                from google.cloud import storage
            except ImportError as err:
                raise ImportError(
                    "gs:// paths need google-cloud-storage: pip install 'sr-tf[batch]'"
                ) from err
            _client = storage.Client()
        return _client


def reset_client() -> None:
    """Forgets the cached client (e.g. after `STORAGE_EMULATOR_HOST` changed)."""
    global _client
    with _client_lock:
        _client = None


def join(base: str, rel: str) -> str:
    """`base` + "/" + `rel` for URIs and local paths (`rel` uses "/" separators)."""
    if is_gcs(base):
        return base.rstrip("/") + "/" + rel.lstrip("/")
    return str(Path(base) / rel)


def _blob(uri: str):
    bucket, name = split_gcs(uri)
    return client().bucket(bucket).blob(name)


def read_bytes(uri: str) -> bytes:
    """The whole file. Raises FileNotFoundError when it does not exist."""
    if is_gcs(uri):
        from google.api_core import exceptions

        try:
            return _blob(uri).download_as_bytes()
        except exceptions.NotFound:
            raise FileNotFoundError(f"No such object: {uri}") from None
    return Path(uri).read_bytes()


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def write_bytes(uri: str, data: bytes, content_type: str | None = None) -> None:
    """Writes `data` to `uri` so that the final name only ever holds complete content."""
    if is_gcs(uri):
        _blob(uri).upload_from_string(data, content_type=content_type or "application/octet-stream")
        return
    atomic_write_bytes(uri, data)


def exists(uri: str) -> bool:
    if is_gcs(uri):
        return _blob(uri).exists()
    return Path(uri).is_file()


def is_dir(uri: str) -> bool:
    """A local directory, or a GCS prefix ending in "/" (or naming at least one object under it)."""
    if is_gcs(uri):
        bucket, name = split_gcs(uri)
        if name == "" or name.endswith("/"):
            return True
        return any(True for _ in client().list_blobs(bucket, prefix=name + "/", max_results=1))
    return Path(uri).is_dir()


def delete(uri: str) -> None:
    """Removes a file; a missing one is not an error."""
    if is_gcs(uri):
        from google.api_core import exceptions

        try:
            _blob(uri).delete()
        except exceptions.NotFound:
            pass
        return
    Path(uri).unlink(missing_ok=True)


def list_files(prefix: str) -> list[str]:
    """Every file under a local directory or a GCS prefix (recursive), sorted; hidden temporaries skipped."""
    if is_gcs(prefix):
        bucket, name = split_gcs(prefix)
        if name and not name.endswith("/"):
            name += "/"
        return sorted(f"{GCS_PREFIX}{bucket}/{b.name}" for b in client().list_blobs(bucket, prefix=name)
                      if not b.name.endswith("/"))
    root = Path(prefix)
    return sorted(str(p) for p in root.rglob("*") if p.is_file() and not p.name.endswith(".tmp"))


def has_glob(pattern: str) -> bool:
    return any(c in pattern for c in _GLOB_CHARS)


def glob_root(pattern: str) -> str:
    """The directory part of `pattern` before its first wildcard (where relative names start)."""
    head = pattern
    for i, c in enumerate(pattern):
        if c in _GLOB_CHARS:
            head = pattern[:i]
            break
    cut = head.rfind("/")
    return head[: cut + 1] if cut >= 0 else ""


def glob(pattern: str) -> list[str]:
    """Files matching `pattern` (`*` does not cross "/", `**` does), local or gs://, sorted."""
    root = glob_root(pattern)
    candidates = list_files(root) if root else list_files(".")
    regex = _glob_regex(pattern if root else "./" + pattern)
    return sorted(f for f in candidates if regex.fullmatch(f if root else _dot(f)))


def _dot(path: str) -> str:
    return path if path.startswith("./") else "./" + path


def _glob_regex(pattern: str):
    import re

    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append(fnmatch.translate(pattern[i : end + 1])[4:-3])
                i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def download_tree(prefix: str, local_dir: str) -> str:
    """Copies every file under `prefix` (a GCS prefix or a local directory) into `local_dir`."""
    files = list_files(prefix)
    if not files:
        raise FileNotFoundError(f"Nothing found under {prefix!r}")
    base = prefix.rstrip("/") + "/"
    for uri in files:
        target = Path(local_dir) / uri[len(base):]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read_bytes(uri))
    return local_dir


def list_with_prefix(prefix: str) -> list[str]:
    """Files whose full name starts with `prefix` (e.g. `DEST/prediction.results-`), not recursing locally."""
    if is_gcs(prefix):
        bucket, name = split_gcs(prefix)
        return sorted(f"{GCS_PREFIX}{bucket}/{b.name}" for b in client().list_blobs(bucket, prefix=name))
    path = Path(prefix)
    parent = path.parent if str(prefix).endswith(path.name) else path
    if not parent.is_dir():
        return []
    return sorted(str(p) for p in parent.iterdir() if p.is_file() and p.name.startswith(path.name))
