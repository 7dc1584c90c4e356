"""Resuming `make_tfrecords`: complete shards kept, interrupted or damaged ones rebuilt, nothing half-read."""

from pathlib import Path

import numpy as np
import pytest
from data_helpers import random_image, read_records, write_folder

from sr_tf.data import DatasetConfig, build_dataset
from sr_tf.data import records as records_module
from sr_tf.data.records import BuildConfig, make_tfrecords, shard_paths, verify_records


class Crash(RuntimeError):
    pass


def make_inputs(tmp_path: Path, count: int = 6) -> BuildConfig:
    rng = np.random.default_rng(0)
    write_folder(tmp_path / "hr", {f"{i:04d}.png": random_image(rng, 16, 16) for i in range(count)})
    return BuildConfig(hr_dir=str(tmp_path / "hr"), output_dir=str(tmp_path / "out"), num_shards=3, progress=False)


def names_in(directory: str) -> list[str]:
    return sorted(r["image/name"].decode() for p in shard_paths(directory) for r in read_records(p))


def test_interrupted_build_resumes_keeping_complete_shards(tmp_path, monkeypatch):
    config = make_inputs(tmp_path)
    real_open = records_module._open_writer

    class CrashingWriter:
        """Writes one record of shard 1, then the process 'dies'."""

        def __init__(self, path):
            self.inner = real_open(path)
            self.crash = "-00001-of-" in path

        def write(self, record):
            self.inner.write(record)
            if self.crash:
                self.inner.flush()
                raise Crash("simulated crash while writing shard 1")

        def close(self):
            self.inner.close()

    monkeypatch.setattr(records_module, "_open_writer", CrashingWriter)
    with pytest.raises(Crash):
        make_tfrecords(config)
    out = tmp_path / "out"
    shard0, shard1, shard2 = (out / f"train-{i:05d}-of-00003.tfrecord" for i in range(3))
    assert shard0.exists() and not shard1.exists() and not shard2.exists()
    assert (out / (shard1.name + ".partial")).exists()
    assert not (out / "manifest.json").exists()
    with pytest.raises(FileNotFoundError, match="manifest"):
        build_dataset(DatasetConfig(path=str(out), scale=2, patch_size=8))  # never reads a half-built set
    kept_stamp = shard0.stat().st_mtime_ns

    monkeypatch.setattr(records_module, "_open_writer", real_open)
    result = make_tfrecords(config)
    assert result.kept == [shard0.name]
    assert result.built == [shard1.name, shard2.name]
    assert shard0.stat().st_mtime_ns == kept_stamp
    assert not list(out.glob("*.partial")) and not (out / "_progress").exists()
    manifest = verify_records(str(out))
    assert manifest["num_records"] == 6
    assert names_in(str(out)) == [f"{i:04d}" for i in range(6)]


def test_damaged_complete_shard_is_named_and_rebuilt(tmp_path):
    config = make_inputs(tmp_path)
    make_tfrecords(config)
    shard = Path(shard_paths(config.output_dir)[2])
    size = shard.stat().st_size
    shard.write_bytes(shard.read_bytes()[:-7])
    lines = []
    result = make_tfrecords(config, log=lines.append)
    assert result.built == [shard.name] and len(result.kept) == 2
    assert lines == [f"{shard}: shard of an earlier build is truncated: {size - 7} bytes, {size} recorded; "
                     "writing it again"]
    verify_records(config.output_dir)
    assert names_in(config.output_dir) == [f"{i:04d}" for i in range(6)]

    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the SHA-256 can tell
    shard.write_bytes(bytes(data))
    lines.clear()
    result = make_tfrecords(config, log=lines.append)
    assert result.built == [shard.name]
    assert lines == [f"{shard}: shard of an earlier build is corrupt: its SHA-256 differs from the recorded one; "
                     "writing it again"]
    verify_records(config.output_dir)


def test_damaged_manifest_is_named_when_read_and_the_build_redone(tmp_path):
    config = make_inputs(tmp_path)
    make_tfrecords(config)
    manifest = Path(config.output_dir) / "manifest.json"
    manifest.write_text(manifest.read_text()[:100])
    with pytest.raises(ValueError, match=f"{manifest} is not readable JSON") as info:
        build_dataset(DatasetConfig(path=config.output_dir, scale=2, patch_size=8))
    assert "make-tfrecords" in str(info.value)
    lines = []
    result = make_tfrecords(config, log=lines.append)
    assert len(result.built) == 3 and lines == [
        f"{manifest} of an earlier build is unreadable (truncated or overwritten); writing every shard not recorded "
        "elsewhere again"]
    verify_records(config.output_dir)
    assert names_in(config.output_dir) == [f"{i:04d}" for i in range(6)]


def test_changed_inputs_rebuild_only_their_shard(tmp_path):
    config = make_inputs(tmp_path)
    make_tfrecords(config)
    write_folder(tmp_path / "hr", {"0001.png": random_image(np.random.default_rng(9), 12, 12)})  # shard 1's image
    result = make_tfrecords(config)
    assert result.built == ["train-00001-of-00003.tfrecord"]
    assert result.kept == ["train-00000-of-00003.tfrecord", "train-00002-of-00003.tfrecord"]
    record = next(r for p in shard_paths(config.output_dir) for r in read_records(p) if r["image/name"] == b"0001")
    assert record["image/height"] == 12
