"""Training batches are a pure function of (config, step): resumable at any step, the same global
batch on any replica layout, every image once per pass; the folder source uses the one decoder."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from data_helpers import batches, build_records, matlab_imresize, random_image, write_folder
from PIL import Image

from sr_tf.data import DatasetConfig, build_dataset
from sr_tf.data.pipeline import record_offsets
from sr_tf.imageio import ImageError


def flat_images(count: int, size: int = 8) -> dict[str, np.ndarray]:
    """Image i is one flat colour whose red value, 10 * (i + 1), identifies it."""
    return {f"{i:02d}.png": np.full((size, size, 3), 10 * (i + 1), np.uint8) for i in range(count)}


def ids(hr: np.ndarray) -> list[int]:
    return [int(round(v)) for v in hr[:, 0, 0, 0] * 255]


@pytest.fixture(params=["folder", "memory", "tfrecord"])
def source(request, tmp_path):
    """A config over 5 random 24x24 images, read from a folder, from memory, or from records."""
    rng = np.random.default_rng(3)
    images = {f"{i:02d}.png": random_image(rng, 24, 24) for i in range(5)}
    if request.param == "tfrecord":
        return DatasetConfig(path=build_records(tmp_path, images, num_shards=2), scale=2, patch_size=8, batch_size=4)
    write_folder(tmp_path / "hr", images)
    return DatasetConfig(path=str(tmp_path / "hr"), source="folder", scale=2, patch_size=8, batch_size=4,
                         cache_decoded=request.param == "memory")


@pytest.mark.parametrize("crops", [1, 2, 3])
def test_starting_at_a_step_gives_the_uninterrupted_batches(source, crops):
    config = source.replace(crops_per_image=crops, degradation="realesrgan" if crops == 3 else "bicubic")
    full = batches(build_dataset(config), 7)
    resumed = batches(build_dataset(config, start_batch=4), 3)
    for (lr_a, hr_a), (lr_b, hr_b) in zip(full[4:], resumed, strict=True):
        np.testing.assert_array_equal(hr_a, hr_b)
        np.testing.assert_array_equal(lr_a, lr_b)
    # and every step is a different batch: a stream that restarts on resume would repeat step 0
    for a in range(7):
        for b in range(a):
            assert not np.array_equal(full[a][1], full[b][1]), (a, b)


def test_every_image_once_per_pass_in_a_new_order(tmp_path):
    write_folder(tmp_path / "hr", flat_images(6))
    config = DatasetConfig(path=str(tmp_path / "hr"), source="folder", scale=2, patch_size=8, batch_size=3)
    passes = [sum((ids(hr) for _lr, hr in batches(build_dataset(config, start_batch=s), 2)), []) for s in (0, 2, 4)]
    for order in passes:
        assert sorted(order) == [10 * (i + 1) for i in range(6)]
    assert len({tuple(p) for p in passes}) == 3  # a new permutation on every pass


def test_global_batch_is_the_same_on_two_pipelines(source):
    config = source.replace(batch_size=4, crops_per_image=1)
    single = batches(build_dataset(config), 3)
    per_pipeline = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=2)
        per_pipeline.append(batches(build_dataset(config, context), 3))
    for step, (lr, hr) in enumerate(single):
        np.testing.assert_array_equal(np.concatenate([per_pipeline[0][step][1], per_pipeline[1][step][1]]), hr)
        np.testing.assert_array_equal(np.concatenate([per_pipeline[0][step][0], per_pipeline[1][step][0]]), lr)


def test_one_pipeline_feeding_two_replicas_takes_turns(tmp_path):
    write_folder(tmp_path / "hr", flat_images(8))
    config = DatasetConfig(path=str(tmp_path / "hr"), source="folder", scale=2, patch_size=8, batch_size=4)
    single = batches(build_dataset(config), 2)
    # one worker, two replicas: its dataset yields replica 0's half, then replica 1's, per step
    context = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=2)
    halves = batches(build_dataset(config, context), 4)
    for step in range(2):
        assert ids(np.concatenate([halves[2 * step][1], halves[2 * step + 1][1]])) == ids(single[step][1])


def test_records_read_by_position_without_manifest_sizes(tmp_path):
    rng = np.random.default_rng(5)
    out = build_records(tmp_path, {f"{i}.png": random_image(rng, 16, 16) for i in range(5)}, num_shards=2)
    config = DatasetConfig(path=out, scale=2, patch_size=8, batch_size=2, verify="none")
    with_sizes = batches(build_dataset(config), 4)
    manifest_path = Path(out) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for shard in manifest["shards"]:
        path = str(Path(out) / shard["file"])
        assert record_offsets(path) == record_offsets(path, shard.pop("record_sizes"))
    manifest_path.write_text(json.dumps(manifest))  # as an older make-tfrecords wrote it
    for (_, a), (_, b) in zip(with_sizes, batches(build_dataset(config), 4), strict=True):
        np.testing.assert_array_equal(a, b)


def test_folder_source_applies_exif_orientation_and_hr_downscale(tmp_path):
    rng = np.random.default_rng(7)
    pixels = random_image(rng, 16, 32)  # stored landscape, shown portrait (EXIF orientation 6)
    folder = tmp_path / "hr"
    folder.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(folder / "rotated.png", exif=exif)
    config = DatasetConfig(path=str(folder), source="folder", scale=2, patch_size=8, batch_size=1,
                           training=False, validation_crop="full")
    [(_, hr)] = batches(build_dataset(config), 1)
    shown = np.rot90(pixels, -1)  # orientation 6: rotate 90 degrees clockwise to display
    np.testing.assert_array_equal(np.round(hr[0] * 255).astype(np.uint8), shown)
    [(_, hr2)] = batches(build_dataset(config.replace(hr_downscale=2)), 1)
    expected = np.clip(np.round(matlab_imresize(shown.astype(np.float64) / 255.0, 2) * 255), 0, 255)
    assert hr2.shape == (1, 16, 8, 3)
    assert np.abs(hr2[0] * 255 - expected).max() <= 1.0


def test_folder_source_refuses_a_decompression_bomb_by_name(tmp_path):
    from data_helpers import huge_png_header

    write_folder(tmp_path / "hr", flat_images(2))
    (tmp_path / "hr" / "bomb.png").write_bytes(huge_png_header(300, 300))  # 33 bytes, 90,000 pixels
    config = DatasetConfig(path=str(tmp_path / "hr"), source="folder", scale=2, patch_size=8, batch_size=1,
                           training=False, max_pixels=10_000)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"bomb\.png.*max_pixels"):
        batches(build_dataset(config), 3)
    with pytest.raises(ImageError, match=r"bomb\.png.*max_pixels"):  # in memory: before any batch
        build_dataset(config.replace(cache_decoded=True))


def test_files_select_part_of_a_folder(tmp_path):
    write_folder(tmp_path / "hr", flat_images(4))
    chosen = [str(tmp_path / "hr" / "01.png"), str(tmp_path / "hr" / "03.png")]
    config = DatasetConfig(path=str(tmp_path / "hr"), source="folder", files=chosen, scale=2, patch_size=8,
                           batch_size=1, training=False)
    assert [ids(hr) for _lr, hr in batches(build_dataset(config), 2)] == [[20], [40]]
    with pytest.raises(ValueError, match="source='folder'"):
        DatasetConfig(path="x", files=chosen)


def test_crop_candidates_prefer_detailed_patches(tmp_path):
    rng = np.random.default_rng(9)
    image = np.full((64, 64, 3), 128, np.uint8)
    image[:, 32:] = rng.integers(0, 256, (64, 32, 3), dtype=np.uint8)  # left half flat, right half noise
    write_folder(tmp_path / "hr", {"half.png": image})
    config = DatasetConfig(path=str(tmp_path / "hr"), source="folder", scale=2, patch_size=8, batch_size=16)

    def flat_share(cfg):
        hr = np.concatenate([b for _, b in batches(build_dataset(cfg), 4)])
        return float(np.mean([p.std() == 0 for p in hr]))

    assert flat_share(config) > 0.25  # plain random crops land on the flat half often
    assert flat_share(config.replace(crop_candidates=8)) == 0.0  # flat only when all 8 are (p ~ 0.1%)
