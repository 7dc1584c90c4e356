"""The storage layer: atomic local writes, globs, gs:// objects on the emulator."""

from __future__ import annotations

import os

import pytest

from sr_tf import storage


def test_a_failed_local_write_leaves_neither_the_file_nor_a_temporary(tmp_path, monkeypatch):
    target = tmp_path / "deep" / "out.png"
    storage.write_bytes(str(target), b"first")

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        storage.write_bytes(str(target), b"second, never visible")
    monkeypatch.undo()
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.png"]


def test_local_globs(tmp_path):
    for name in ("a.png", "b.jpg", "s/c.png", "s/t/d.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    root = str(tmp_path)

    def names(pattern):
        return [os.path.relpath(p, root) for p in storage.glob(f"{root}/{pattern}")]

    assert names("*.png") == ["a.png"]
    assert names("**/*.png") == ["a.png", "s/c.png", "s/t/d.png"]
    assert names("s/*/?.png") == ["s/t/d.png"]
    assert names("[ab].*") == ["a.png", "b.jpg"]
    assert storage.glob_root(f"{root}/s/*.png") == f"{root}/s/"


def test_gcs_objects_on_the_emulator(gcs):
    uri = "gs://sr-tf-test/storage/x/y.bin"
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(uri)
    assert not storage.exists(uri)
    storage.write_bytes(uri, b"\x00data")
    assert storage.exists(uri) and storage.read_bytes(uri) == b"\x00data"
    assert storage.is_dir("gs://sr-tf-test/storage/x") and not storage.is_dir("gs://sr-tf-test/storage/z")
    assert storage.list_files("gs://sr-tf-test/storage") == [uri]
    assert storage.list_with_prefix("gs://sr-tf-test/storage/x/y") == [uri]
    storage.delete(uri)
    storage.delete(uri)  # missing: not an error
    assert storage.list_files("gs://sr-tf-test/storage/") == []
    with pytest.raises(ValueError, match="needs a bucket"):
        storage.split_gcs("gs:///name")
