"""`sr_tf.integrity.atomic_write`, the one home of atomic file writes."""

import os
import stat
import threading

import pytest

from sr_tf.integrity import atomic_write, atomic_write_bytes


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.keras"
    target.write_bytes(b"old")

    def fail(tmp):
        assert tmp.endswith("model.keras")  # the extension is kept (Keras checks it)
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, fail)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_concurrent_writers_of_one_path_each_write_whole_files(tmp_path):
    target = tmp_path / "sub" / "cache.bin"
    seen = []
    barrier = threading.Barrier(4)

    def write(tmp, data):
        seen.append(tmp)
        barrier.wait()  # all four temporaries exist at once
        with open(tmp, "wb") as f:
            f.write(data)

    threads = [threading.Thread(target=atomic_write, args=(target, lambda t, d=bytes([i]) * 1000: write(t, d)))
               for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 4
    data = target.read_bytes()
    assert len(data) == 1000 and len(set(data)) == 1
    assert [p.name for p in target.parent.iterdir()] == ["cache.bin"]


def test_a_written_file_has_the_usual_mode(tmp_path):
    mask = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.png", b"x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "a.png").stat().st_mode) == 0o644
