"""`source="tfds"` with TFDS's mock data (nothing is downloaded); skipped without tensorflow-datasets."""

import pytest

from sr_tf.data import DatasetConfig, build_dataset

tfds = pytest.importorskip("tensorflow_datasets")


def test_tfds_div2k_source_with_mock_data():
    with tfds.testing.mock_data(num_examples=4):
        config = DatasetConfig(path="div2k/bicubic_x2", source="tfds", scale=2, patch_size=8, batch_size=2)
        [(lr, hr)] = [(a.numpy(), b.numpy()) for a, b in build_dataset(config).take(1)]
    assert lr.shape == (2, 4, 4, 3) and hr.shape == (2, 8, 8, 3)
    assert 0.0 <= hr.min() and hr.max() <= 1.0
