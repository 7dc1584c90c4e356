"""The tf.data pipeline: pair alignment, reference LR, determinism, validation, sources, sharding."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from data_helpers import (
    batches,
    blocky_pair,
    build_records,
    fspecial_gaussian,
    imfilter_replicate,
    matlab_imresize,
    random_image,
    write_folder,
)

from sr_tf.data import DatasetConfig, build_dataset


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_paired_crops_stay_aligned_after_augmentation(tmp_path, scale):
    # HR = each LR pixel repeated s x s, so a correctly aligned pair has hr[::s, ::s] == lr,
    # also after any flip/transpose applied to both.
    rng = np.random.default_rng(scale)
    hr, lr = {}, {}
    for i in range(4):
        small, big = blocky_pair(rng, 10, 12, scale)
        hr[f"{i}.png"], lr[f"{i}x{scale}.png"] = big, small
    out = build_records(tmp_path, hr, {scale: lr})
    config = DatasetConfig(path=out, scale=scale, patch_size=4 * scale, batch_size=8, degradation="paired", crops_per_image=2)
    augmented = batches(build_dataset(config), 3)
    for lr_batch, hr_batch in augmented:
        assert lr_batch.shape == (8, 4, 4, 3) and hr_batch.shape == (8, 4 * scale, 4 * scale, 3)
        np.testing.assert_array_equal(hr_batch[:, ::scale, ::scale], lr_batch)
    plain = batches(build_dataset(config.replace(augment=False)), 3)
    assert any(not np.array_equal(a[1], p[1]) for a, p in zip(augmented, plain, strict=True))


@pytest.fixture(scope="module")
def hr_records(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("hr_records")
    rng = np.random.default_rng(10)
    return build_records(tmp_path, {f"{i}.png": random_image(rng, 30, 36) for i in range(5)})


def test_synthesized_lr_is_matlab_bicubic_of_the_hr_patch(hr_records):
    for scale in (2, 3, 4):
        config = DatasetConfig(path=hr_records, scale=scale, patch_size=6 * scale, batch_size=4)
        [(lr, hr)] = batches(build_dataset(config), 1)
        for n in range(4):
            expected = np.clip(np.round(matlab_imresize(hr[n].astype(np.float64), scale) * 255), 0, 255)
            diff = np.abs(lr[n] * 255 - expected)
            assert diff.max() <= 1.0 and diff.mean() < 0.01  # 1 level only where float32 rounds a .5 the other way


def test_blur_bicubic_in_the_pipeline(hr_records):
    config = DatasetConfig(path=hr_records, scale=2, patch_size=16, batch_size=2, degradation="blur-bicubic", blur_sigma=1.2, blur_kernel_size=5)
    [(lr, hr)] = batches(build_dataset(config), 1)
    for n in range(2):
        blurred = imfilter_replicate(hr[n].astype(np.float64), fspecial_gaussian(5, 1.2))
        expected = np.clip(np.round(matlab_imresize(blurred, 2) * 255), 0, 255)
        assert np.abs(lr[n] * 255 - expected).max() <= 1.0


def test_same_seed_same_batches_other_seed_other_batches(hr_records):
    # Every random choice (files, records, crops, patches, augmentation, degradation) is seeded;
    # parallel maps must not change the order.
    config = DatasetConfig(path=hr_records, scale=4, patch_size=16, batch_size=4, degradation="realesrgan",
                           crops_per_image=3, shuffle_buffer=4, num_parallel_calls=2)
    first = batches(build_dataset(config), 2)
    again = batches(build_dataset(config), 2)
    for (lr_a, hr_a), (lr_b, hr_b) in zip(first, again, strict=True):
        np.testing.assert_array_equal(lr_a, lr_b)
        np.testing.assert_array_equal(hr_a, hr_b)
    assert first[0][0].shape == (4, 4, 4, 3)
    cheap = config.replace(degradation="bicubic")
    assert not np.array_equal(batches(build_dataset(cheap), 1)[0][1], batches(build_dataset(cheap.replace(seed=1)), 1)[0][1])


def test_validation_center_crops_are_fixed(tmp_path):
    rng = np.random.default_rng(11)
    images = {f"{i}.png": random_image(rng, 20, 28) for i in range(3)}
    out = build_records(tmp_path, images, num_shards=1)
    config = DatasetConfig(path=out, scale=2, patch_size=8, batch_size=2, training=False)
    got = batches(build_dataset(config), 10)
    assert [hr.shape[0] for _, hr in got] == [2, 1]  # one epoch, last batch kept
    hr_all = np.concatenate([hr for _, hr in got])
    for i, name in enumerate(sorted(images)):
        # centre in LR units: ((20/2 - 4) // 2, (28/2 - 4) // 2) = (3, 5) -> HR (6, 10)
        np.testing.assert_array_equal(hr_all[i] * 255, images[name][6:14, 10:18])
    again = batches(build_dataset(config), 10)
    np.testing.assert_array_equal(np.concatenate([lr for lr, _ in again]), np.concatenate([lr for lr, _ in got]))
    full = batches(build_dataset(config.replace(validation_crop="full", batch_size=1)), 10)
    assert [(lr.shape, hr.shape) for lr, hr in full] == [((1, 10, 14, 3), (1, 20, 28, 3))] * 3


def test_folder_source_paired_and_synthesized(tmp_path):
    rng = np.random.default_rng(12)
    hr, lr = {}, {}
    for i in range(3):
        small, big = blocky_pair(rng, 8, 8, 2)
        hr[f"{i:04d}.png"], lr[f"{i:04d}x2.png"] = big, small
    write_folder(tmp_path / "hr", hr)
    write_folder(tmp_path / "lr", lr)
    (tmp_path / "hr" / "README.txt").write_text("ignored: not an image suffix")
    config = DatasetConfig(path=str(tmp_path / "hr"), source="folder", lr_path=str(tmp_path / "lr"), scale=2, patch_size=8, batch_size=3, degradation="paired")
    [(lr_b, hr_b)] = batches(build_dataset(config), 1)
    np.testing.assert_array_equal(hr_b[:, ::2, ::2], lr_b)
    [(lr_b, hr_b)] = batches(build_dataset(config.replace(degradation="bicubic", lr_path=None)), 1)
    assert lr_b.shape == (3, 4, 4, 3) and hr_b.shape == (3, 8, 8, 3)


@pytest.mark.parametrize("num_shards", [3, 1])
def test_input_context_gives_disjoint_shards_covering_everything(tmp_path, num_shards):
    # Each image is one flat colour: its red value identifies it. With 1 shard file the
    # records, not the files, are split between the input pipelines.
    images = {f"{i}.png": np.full((8, 8, 3), 10 * (i + 1), np.uint8) for i in range(6)}
    out = build_records(tmp_path, images, num_shards=num_shards)
    config = DatasetConfig(path=out, scale=2, patch_size=8, batch_size=4, training=False)
    seen = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=2)
        ids = []
        for _lr, hr in build_dataset(config, context):
            assert hr.shape[0] <= 2  # per-replica batch: 4 / 2
            ids += [int(round(v)) for v in hr[:, 0, 0, 0].numpy() * 255]
        seen.append(set(ids))
        assert len(ids) == len(set(ids))
        if num_shards == 1:
            assert len(ids) == 3  # records alternate between the pipelines
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == {10 * (i + 1) for i in range(6)}


def test_keras_fit_takes_the_dataset(hr_records):
    config = DatasetConfig(path=hr_records, scale=2, patch_size=16, batch_size=2)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(12, 3, padding="same"), keras.layers.Lambda(lambda x: tf.nn.depth_to_space(x, 2))])
    model.compile(optimizer="adam", loss="mae")
    history = model.fit(build_dataset(config), steps_per_epoch=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_clear_errors(tmp_path, hr_records):
    with pytest.raises(ValueError, match="smaller than patch_size=64"):
        build_dataset(DatasetConfig(path=hr_records, scale=2, patch_size=64))
    with pytest.raises(ValueError, match="LR images of scale 2"):
        build_dataset(DatasetConfig(path=hr_records, scale=2, patch_size=8, degradation="paired"))
    with pytest.raises(FileNotFoundError, match="manifest"):
        build_dataset(DatasetConfig(path=str(tmp_path), scale=2, patch_size=8))
    with pytest.raises(ValueError, match="multiple of scale"):
        DatasetConfig(path="x", scale=3, patch_size=16)
    with pytest.raises(ValueError, match="degradation must be one of"):
        DatasetConfig(path="x", degradation="nearest")
    with pytest.raises(ValueError, match="batch_size=1"):
        DatasetConfig(path="x", training=False, validation_crop="full", batch_size=4)
