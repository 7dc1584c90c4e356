"""Building TFRecords: round trip, sub-images, bad inputs, conversions, corrupt/truncated shards."""

import json
from pathlib import Path

import numpy as np
import pytest
from data_helpers import (
    build_records,
    decode,
    make_bad_inputs,
    matlab_imresize,
    random_image,
    read_records,
    save,
    write_folder,
)

from sr_tf.data import DatasetConfig, build_dataset
from sr_tf.data.records import (
    BuildConfig,
    CorruptShardError,
    make_tfrecords,
    shard_paths,
    verify_records,
)
from sr_tf.data.schema import read_manifest


def all_records(directory: str) -> dict[str, dict]:
    return {r["image/name"].decode(): r for path in shard_paths(directory) for r in read_records(path)}


def test_round_trip_keeps_the_encoded_bytes(tmp_path):
    rng = np.random.default_rng(0)
    hr = {"0001.png": random_image(rng, 16, 20), "0002.png": random_image(rng, 16, 20), "0003.jpg": random_image(rng, 16, 20)}
    lr = {2: {"0001x2.png": random_image(rng, 8, 10), "0002x2.png": random_image(rng, 8, 10), "0003x2.png": random_image(rng, 8, 10)}}
    out = build_records(tmp_path, hr, lr)
    records = all_records(out)
    assert sorted(records) == ["0001", "0002", "0003"]
    for name in hr:
        stem = name.split(".")[0]
        record = records[stem]
        assert record["image/encoded"] == (tmp_path / "records_hr" / name).read_bytes()
        assert record["lr_x2/encoded"] == (tmp_path / "records_lr" / "X2" / f"{stem}x2.png").read_bytes()
        assert record["image/format"] == (b"jpeg" if name.endswith(".jpg") else b"png")
        assert (record["image/height"], record["image/width"]) == (16, 20)
        assert (record["lr_x2/height"], record["lr_x2/width"]) == (8, 10)
    manifest = verify_records(out)
    assert manifest["num_records"] == 3 and manifest["num_skipped"] == 0 and manifest["lr_scales"] == [2]
    assert sum(s["records"] for s in manifest["shards"]) == 3


def test_sub_images_follow_basicsr_positions(tmp_path):
    image = random_image(np.random.default_rng(1), 36, 40)
    out = build_records(tmp_path, {"0001.png": image}, sub_image_size=16, sub_image_step=8, num_shards=1)
    records = all_records(out)
    # Height 36: starts 0, 8, 16 and 20 (flush with the end); width 40: 0, 8, 16, 24.
    crops = sorted(tuple(r["image/crop"]) for r in records.values())
    assert crops == sorted((t, left, 16, 16) for t in (0, 8, 16, 20) for left in (0, 8, 16, 24))
    assert len(records) == 16 and "0001_s001" in records and "0001_s016" in records
    for record in records.values():
        top, left, h, w = record["image/crop"]
        np.testing.assert_array_equal(decode(record["image/encoded"]), image[top : top + h, left : left + w])


def test_paired_sub_images_crop_lr_at_the_same_place(tmp_path):
    rng = np.random.default_rng(2)
    hr = random_image(rng, 48, 48)
    lr4 = random_image(rng, 12, 12)
    out = build_records(tmp_path, {"a.png": hr}, {4: {"ax4.png": lr4}}, sub_image_size=24, sub_image_step=12, num_shards=1)
    for record in all_records(out).values():
        top, left, h, w = record["image/crop"]
        np.testing.assert_array_equal(decode(record["lr_x4/encoded"]), lr4[top // 4 : (top + h) // 4, left // 4 : (left + w) // 4])


def test_bad_inputs_are_reported_skipped_and_nothing_else_is_lost(tmp_path):
    rng = np.random.default_rng(3)
    good = {f"{i:04d}.png": random_image(rng, 16, 16) for i in range(3)}
    hr_dir = tmp_path / "hr"
    data = write_folder(hr_dir, good)
    bad = make_bad_inputs(hr_dir, data["0000.png"])
    logged = []
    result = make_tfrecords(BuildConfig(hr_dir=str(hr_dir), output_dir=str(tmp_path / "out"), num_shards=2, progress=False), log=logged.append)
    manifest = result.manifest
    assert manifest["num_skipped"] == 4 and manifest["num_records"] == 3
    reasons = {item["name"]: item["reason"] for item in manifest["skipped"]}
    assert sorted(reasons) == bad
    assert "file is empty" in reasons["empty.png"]
    assert "not an image" in reasons["notes.txt"]
    assert "too large" in reasons["huge.png"] and "10000000000" in reasons["huge.png"]
    assert "truncated" in reasons["truncated.png"]
    assert all(any(name in line for line in logged) for name in bad)
    assert sorted(all_records(str(tmp_path / "out"))) == ["0000", "0001", "0002"]


def test_max_pixels_limit_is_named(tmp_path):
    rng = np.random.default_rng(4)
    write_folder(tmp_path / "hr", {"small.png": random_image(rng, 8, 8), "big.png": random_image(rng, 40, 40)})
    result = make_tfrecords(BuildConfig(hr_dir=str(tmp_path / "hr"), output_dir=str(tmp_path / "out"), max_pixels=1000, progress=False))
    [item] = result.manifest["skipped"]
    assert item["name"] == "big.png" and "40x40" in item["reason"] and "max_pixels=1000" in item["reason"]


def test_non_rgb_inputs_are_converted_and_listed(tmp_path):
    rng = np.random.default_rng(5)
    rgba = rng.integers(0, 256, (8, 8, 4), dtype=np.uint8)
    gray = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    hr_dir = tmp_path / "hr"
    hr_dir.mkdir()
    save(rgba, hr_dir / "rgba.png")
    save(gray, hr_dir / "gray.png")
    result = make_tfrecords(BuildConfig(hr_dir=str(hr_dir), output_dir=str(tmp_path / "out"), num_shards=1, progress=False))
    assert sorted(c["name"] for c in result.manifest["converted"]) == ["gray.png", "rgba.png"]
    records = all_records(str(tmp_path / "out"))
    np.testing.assert_array_equal(decode(records["rgba"]["image/encoded"]), rgba[..., :3])
    np.testing.assert_array_equal(decode(records["gray"]["image/encoded"]), np.repeat(gray[..., None], 3, -1))


def test_downscale_hr_uses_matlab_bicubic(tmp_path):
    image = random_image(np.random.default_rng(6), 20, 26)
    out = build_records(tmp_path, {"p.png": image}, downscale_hr=2, num_shards=1)
    [record] = all_records(out).values()
    expected = np.clip(np.round(matlab_imresize(image / 255.0, 2) * 255), 0, 255)
    got = decode(record["image/encoded"]).astype(np.float64)
    assert got.shape == (10, 13, 3) and np.abs(got - expected).max() <= 1


def test_lr_mismatches_are_skipped_with_reasons(tmp_path):
    rng = np.random.default_rng(7)
    hr = {"a.png": random_image(rng, 16, 16), "b.png": random_image(rng, 16, 16), "c.png": random_image(rng, 16, 16)}
    lr = {2: {"ax2.png": random_image(rng, 8, 8), "bx2.png": random_image(rng, 5, 8)}}  # c has no LR, b is too small
    out = build_records(tmp_path, hr, lr, num_shards=1)
    manifest = read_manifest(out)
    reasons = {item["name"]: item["reason"] for item in manifest["skipped"]}
    assert "no LR image for x2" in reasons["c.png"] and "8x5" in reasons["b.png"]
    assert manifest["num_records"] == 1


def test_missing_lr_scale_folder_is_an_error(tmp_path):
    write_folder(tmp_path / "hr", {"a.png": random_image(np.random.default_rng(0), 8, 8)})
    write_folder(tmp_path / "lr" / "X2", {"ax2.png": random_image(np.random.default_rng(0), 4, 4)})
    with pytest.raises(FileNotFoundError, match=r"scale\(s\) \[3\]"):
        make_tfrecords(BuildConfig(hr_dir=str(tmp_path / "hr"), output_dir=str(tmp_path / "o"), lr_dir=str(tmp_path / "lr"), scales=(3,), progress=False))


def test_truncated_and_corrupt_shards_are_named(tmp_path):
    rng = np.random.default_rng(8)
    out = build_records(tmp_path, {f"{i}.png": random_image(rng, 16, 16) for i in range(4)}, num_shards=2)
    first, second = (Path(p) for p in shard_paths(out))
    original = first.read_bytes()
    first.write_bytes(original[:-10])  # cut off
    with pytest.raises(CorruptShardError, match="truncated") as info:
        verify_records(out, checksum=False)
    assert info.value.path.endswith(first.name) and first.name in str(info.value)
    config = DatasetConfig(path=out, scale=2, patch_size=8, batch_size=2)
    with pytest.raises(CorruptShardError, match=first.name):
        build_dataset(config)
    first.write_bytes(original)
    data = bytearray(second.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one flipped byte
    second.write_bytes(bytes(data))
    verify_records(out, checksum=False)  # sizes alone cannot see it
    with pytest.raises(CorruptShardError, match=f"{second.name}: shard is corrupt"):
        verify_records(out)
    with pytest.raises(CorruptShardError, match=second.name):
        build_dataset(config.replace(verify="checksum"))
    manifest = json.loads((Path(out) / "manifest.json").read_text())
    assert manifest["shards"][1]["file"] == second.name
