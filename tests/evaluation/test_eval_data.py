import numpy as np
import pytest
import tensorflow as tf
from eval_helpers import colourful
from PIL import Image

from sr_tf.evaluation import data


def test_prepare_hr_crops_to_multiple_of_scale_and_says_so():
    hr = colourful(35, 42)
    out, notes = data.prepare_hr(hr, 4, data.HRPreparation())
    assert out.shape == (32, 40, 3)
    np.testing.assert_array_equal(out, hr[:32, :40])
    assert notes == ["cropped from 35x42 to 32x40 (multiple of scale 4)"]


def test_prepare_hr_centre_crop_and_downscale():
    hr = colourful(64, 80)
    out, notes = data.prepare_hr(hr, 4, data.HRPreparation(downscale=2, center_crop=24))
    assert out.shape == (24, 24, 3)
    half = data.to_uint8(data.imresize(hr.astype(np.float32) / 255, 2))
    np.testing.assert_array_equal(out, half[4:28, 8:32])  # 32x40 -> centre 24x24 at (4, 8)
    assert "downscaled by 2" in notes[0] and "centre crop 24x24 at (y=4, x=8)" in notes[1]


def test_bad_preparation_rejected():
    with pytest.raises(ValueError, match="downscale"):
        data.HRPreparation(downscale=0)
    with pytest.raises(ValueError, match="center_crop"):
        data.HRPreparation(center_crop=-1)


def test_degrade_is_antialiased_bicubic_rounded_to_8_bits():
    hr = colourful(32, 40)
    lr = data.degrade(hr, 4, convention="pipeline")  # one rounding (MATLAB's: test_eval_conventions)
    assert lr.shape == (8, 10, 3) and lr.dtype == np.uint8
    # tf.image.resize's antialiased bicubic equals MATLAB's imresize away from the borders
    # (MATLAB mirrors the image there, TF renormalises the kernel).
    reference = np.clip(tf.image.resize(hr / 255.0, (8, 10), "bicubic", antialias=True).numpy(), 0, 1) * 255
    assert np.abs(lr.astype(float) - reference)[2:-2, 2:-2].max() <= 0.51
    with pytest.raises(ValueError, match="Unknown degradation"):
        data.degrade(hr, 4, "nearest")


def test_to_rgb8_converts_and_notes():
    gray16 = (np.arange(16, dtype=np.uint16).reshape(4, 4, 1) * 4369)  # 0..65535
    rgb, notes = data.to_rgb8(gray16)
    assert rgb.shape == (4, 4, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 0] == 0 and rgb[3, 3, 2] == 255
    assert notes == ["16-bit converted to 8-bit", "gray converted to RGB"]
    rgba = np.zeros((2, 2, 4), np.uint8)
    assert data.to_rgb8(rgba)[1] == ["alpha channel dropped"]


def test_open_pairs_from_hr_folder(hr_folder):
    pairs, total = data.open_pairs([hr_folder], 2, limit=1)
    pairs = list(pairs)
    assert total == 1 and len(pairs) == 1
    pair = pairs[0]
    assert pair.name == "img0" and pair.hr.shape == (32, 40, 3) and pair.lr.shape == (16, 20, 3)
    np.testing.assert_array_equal(pair.lr, data.degrade(pair.hr, 2))


def test_open_pairs_glob_and_missing(hr_folder, tmp_path):
    pairs, total = data.open_pairs([str(hr_folder / "img1.*")], 2)
    assert total == 1 and [p.name for p in pairs] == ["img1"]
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        data.open_pairs([str(tmp_path / "nothing-here")], 2)
    with pytest.raises(ValueError, match="scale"):
        data.open_pairs([hr_folder], 5)


def test_paired_ntire_folders_match_by_stem(tmp_path):
    hr_dir, lr_dir = tmp_path / "HR", tmp_path / "X2"
    hr_dir.mkdir()
    lr_dir.mkdir()
    hr = colourful(33, 40)  # one row more than 2 x LR: cropped to match, with a note
    lr = colourful(16, 20, seed=5)
    Image.fromarray(hr).save(hr_dir / "0801.png")
    Image.fromarray(lr).save(lr_dir / "0801x2.png")
    pairs, total = data.open_pairs([hr_dir], 2, lr_data=lr_dir)
    (pair,) = list(pairs)
    np.testing.assert_array_equal(pair.lr, lr)  # used as given, not remade
    np.testing.assert_array_equal(pair.hr, hr[:32])
    assert any("cropped from 33x40 to 32x40" in n for n in pair.notes)

    Image.fromarray(colourful(8, 8)).save(hr_dir / "0802.png")
    with pytest.raises(FileNotFoundError, match="0802"):
        data.open_pairs([hr_dir], 2, lr_data=lr_dir)


def test_paired_folders_wrong_size_is_an_error(tmp_path):
    hr_dir, lr_dir = tmp_path / "HR", tmp_path / "LR"
    hr_dir.mkdir()
    lr_dir.mkdir()
    Image.fromarray(colourful(32, 40)).save(hr_dir / "a.png")
    Image.fromarray(colourful(10, 10)).save(lr_dir / "a.png")
    pairs, _ = data.open_pairs([hr_dir], 2, lr_data=lr_dir)
    with pytest.raises(ValueError, match=r"10x10.*32x40"):
        list(pairs)
    with pytest.raises(ValueError, match="paired"):
        data.open_pairs([hr_dir], 2, lr_data=lr_dir, preparation=data.HRPreparation(center_crop=16))


def test_random_degradation_is_seeded_per_image(hr_folder):
    def lrs(seed):
        pairs, _ = data.open_pairs([hr_folder], 2, degradation="realesrgan", seed=seed)
        return [p.lr for p in pairs]

    first, again, other = lrs(1), lrs(1), lrs(2)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
    with pytest.raises(ValueError, match="Unknown degradation"):
        data.open_pairs([hr_folder], 2, degradation="nearest")


def test_tfrecords_with_and_without_lr(tmp_path):
    import io

    import tensorflow as tf

    from sr_tf.data.schema import serialize_example

    def png(array):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        return buffer.getvalue()

    hr_a, hr_b, lr_b = colourful(32, 40, 0), colourful(16, 24, 1), colourful(8, 12, 2)
    folder = tmp_path / "records"
    folder.mkdir()
    with tf.io.TFRecordWriter(str(folder / "val-00000-of-00001.tfrecord")) as writer:
        writer.write(serialize_example(png(hr_a), "png", 32, 40, "a", "a.png", (0, 0, 32, 40)))
        writer.write(
            serialize_example(png(hr_b), "png", 16, 24, "b", "b.png", (0, 0, 16, 24), lr={2: (png(lr_b), "png", 8, 12)})
        )
    (folder / "val-00001-of-00002.tfrecord.partial").write_bytes(b"half written")  # never read
    pairs, total = data.open_pairs([folder], 2)
    a, b = list(pairs)
    assert total is None and (a.name, b.name) == ("a", "b")
    np.testing.assert_array_equal(a.hr, hr_a)
    np.testing.assert_array_equal(a.lr, data.degrade(hr_a, 2))  # made from HR
    np.testing.assert_array_equal(b.lr, lr_b)  # the record's own LR
    assert "LR from the record (lr_x2)" in b.notes and b.source.endswith("val-00000-of-00001.tfrecord #1")


def test_records_built_by_make_tfrecords(hr_folder, tmp_path):
    from sr_tf.data.records import BuildConfig, make_tfrecords

    out = tmp_path / "records"
    make_tfrecords(BuildConfig(str(hr_folder), str(out), num_shards=2, prefix="valid", progress=False))
    pairs, _ = data.open_pairs([out], 2)
    by_name = {p.name: p for p in pairs}
    assert sorted(by_name) == ["img0", "img1"]
    from_files = {p.name: p for p in data.open_pairs([hr_folder], 2)[0]}
    for name, pair in by_name.items():
        np.testing.assert_array_equal(pair.hr, from_files[name].hr)
        np.testing.assert_array_equal(pair.lr, from_files[name].lr)
