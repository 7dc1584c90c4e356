"""One home for writing files atomically and for recording and checking what was written.

Resumable work (training checkpoints, TFRecord shards, video segments, batch outputs) writes each
piece under a temporary name and renames it into place (`atomic_write`), then records its size and
SHA-256 (`file_record`) in the piece's description, written last. Before a piece is used again
`check_file` compares it with that record; a damaged piece is redone, or set aside
(`set_aside`: renamed, never deleted) when it cannot be.

Paths are local, except that `hash_file` / `file_record` / `check_file` also read `gs://` and
other `tf.io.gfile` paths (TensorFlow is imported only for those).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

CHUNK = 1 << 22
DAMAGED_SUFFIX = ".damaged"


def _open_read(path: str):
    if "://" in path:
        import tensorflow as tf

        return tf.io.gfile.GFile(path, "rb")
    return open(path, "rb")  # noqa: SIM115 (closed by the caller's `with`)


def _size(path: str) -> int | None:
    """The size in bytes, or None when the file does not exist."""
    if "://" in path:
        import tensorflow as tf

        return tf.io.gfile.stat(path).length if tf.io.gfile.exists(path) else None
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None


def hash_file(path: str | os.PathLike) -> tuple[int, str]:
    """(size in bytes, SHA-256 hex digest) of a file, read in 4 MiB chunks."""
    digest, size = hashlib.sha256(), 0
    with _open_read(os.fspath(path)) as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def file_record(path: str | os.PathLike) -> dict[str, int | str]:
    """What `check_file` needs to verify `path` later: `{"bytes": size, "sha256": hex digest}`."""
    size, sha = hash_file(path)
    return {"bytes": size, "sha256": sha}


def bytes_record(data: bytes) -> dict[str, int | str]:
    """`file_record` of a file that holds `data` (for content written from memory)."""
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _size_problem(size: int, record: dict) -> str | None:
    if size == record["bytes"]:
        return None
    kind = "truncated" if size < record["bytes"] else "longer than recorded"
    return f"{kind}: {size} bytes, {record['bytes']} recorded"


_CORRUPT = "corrupt: its SHA-256 differs from the recorded one"


def check_file(path: str | os.PathLike, record: dict, checksum: bool = True) -> str | None:
    """None when `path` matches `record` (`file_record`'s dict), else what is wrong: "missing",
    "truncated: 1200 bytes, 4096 recorded", "longer than recorded: ...", "corrupt: ...".
    `checksum=False` compares sizes only (cheap)."""
    path = os.fspath(path)
    size = _size(path)
    if size is None:
        return "missing"
    problem = _size_problem(size, record)
    if problem is None and checksum and hash_file(path)[1] != record["sha256"]:
        problem = _CORRUPT
    return problem


def check_bytes(data: bytes, record: dict) -> str | None:
    """`check_file` of content already read into memory."""
    problem = _size_problem(len(data), record)
    if problem is None and hashlib.sha256(data).hexdigest() != record["sha256"]:
        problem = _CORRUPT
    return problem


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Writes through `write(tmp_path)` then renames over `path`, so readers never see half a file.

    The temporary file is `.tmp-XXXX-NAME` beside `path`: the same folder (hence the same file
    system), a name of its own per call (two processes writing the same cache entry do not collide),
    the extension kept (Keras checks it). It gets a new file's usual mode (0666 less the umask; a
    bare temporary file would be 0600) and is removed if `write` fails. The parent folder is created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=f"-{path.name}")
    os.close(fd)
    try:
        write(tmp)
        if os.path.isfile(tmp):
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """`atomic_write` of `data`."""
    atomic_write(path, lambda p: Path(p).write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """`atomic_write` of a UTF-8 text."""
    atomic_write(path, lambda p: Path(p).write_text(text, encoding="utf-8"))


def set_aside(path: str | os.PathLike) -> Path:
    """Renames a damaged file to `NAME.damaged` (`NAME.damaged-2`, ... if taken) and returns the
    new path; the bytes are kept for whoever wants to look at them."""
    path = Path(path)
    target = path.with_name(path.name + DAMAGED_SUFFIX)
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}{DAMAGED_SUFFIX}-{n}")
    os.replace(path, target)
    return target
