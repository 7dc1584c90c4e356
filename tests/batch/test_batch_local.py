"""Local inputs: folders with every image mode, file lists, TFRecords, .keras models with tiling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from batch_helpers import assert_upscaled_equal, jsonl, png_bytes, random_image, reference_upscale
from PIL import Image

from sr_tf.batch import BatchConfig, run_batch
from sr_tf.imageio import read_image


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype == np.uint16:
        path.write_bytes(tf.io.encode_png(array).numpy())
    else:
        path.write_bytes(png_bytes(array[..., 0] if array.shape[-1] == 1 else array))


def test_folder_keeps_names_modes_and_bit_depth(tmp_path, savedmodel, tiny_model):
    src = tmp_path / "in"
    images = {
        "rgb.png": random_image(0, (16, 16, 3)),
        "deep/gray.png": random_image(1, (16, 12, 1)),
        "rgba.png": random_image(2, (10, 16, 4)),
        "sixteen.png": random_image(3, (8, 8, 3), np.uint16),
    }
    for name, array in images.items():
        _write(src / name, array)
    (src / "notes.txt").write_text("not an image: ignored in a folder")
    out = src / "sr"  # inside the input folder: outputs must not become inputs on a re-run
    summary = run_batch(BatchConfig(model=str(savedmodel.parent), input=str(src), output=str(out)))
    assert (summary.succeeded, summary.failed) == (4, 0)
    for name, array in images.items():
        got = read_image(out / name)
        h, w, c = array.shape
        assert got.shape == (2 * h, 2 * w, c) and got.dtype == array.dtype, name
    rgb = images["rgb.png"]
    assert_upscaled_equal(read_image(out / "rgb.png"), reference_upscale(tiny_model, rgb[None].astype(np.float32))[0])
    again = run_batch(BatchConfig(model=str(savedmodel), input=str(src), output=str(out)))
    assert (again.succeeded, again.failed, again.skipped) == (4, 0, 4)


def test_keras_model_tiles_large_images_like_whole_ones(tmp_path, tiny_model, savedmodel):
    tiny_model.save(tmp_path / "tiny.keras")
    image = random_image(5, (20, 23, 3))
    _write(tmp_path / "in" / "big.png", image)
    tiled = BatchConfig(model=str(tmp_path / "tiny.keras"), input=str(tmp_path / "in"), output=str(tmp_path / "t"),
                        tile=8, tile_pad=6)  # blended over 3 px, 3 px of context left: the 3-conv model's reach
    assert run_batch(tiled).succeeded == 1
    assert run_batch(BatchConfig(model=str(savedmodel), input=str(tmp_path / "in"), output=str(tmp_path / "w"))).succeeded == 1
    want = reference_upscale(tiny_model, image[None].astype(np.float32))[0]
    assert_upscaled_equal(read_image(tmp_path / "t" / "big.png"), want)
    assert_upscaled_equal(read_image(tmp_path / "w" / "big.png"), want)


def test_file_list_resolves_relative_paths_and_reports_missing(tmp_path, savedmodel):
    for i in range(3):
        _write(tmp_path / "data" / f"a{i}.png", random_image(i, (6, 6, 3)))
    listing = tmp_path / "data" / "list.txt"
    listing.write_text("a0.png\n\n" + str(tmp_path / "data" / "a1.png") + "\na2.png\nmissing.png\n")
    out = tmp_path / "out"
    summary = run_batch(BatchConfig(model=str(savedmodel), input=str(listing), output=str(out), output_format="webp",
                                    quality=100))
    assert (summary.succeeded, summary.failed) == (3, 1)
    assert sorted(p.name for p in out.glob("*.webp")) == ["a0.webp", "a1.webp", "a2.webp"]
    (error,) = jsonl((out / "prediction.errors_stats-00000-of-00001").read_text())
    assert error["instance"].endswith("missing.png") and error["error"]["status"] == "NOT_FOUND"


def test_tfrecords_of_encoded_images_and_of_examples(tmp_path, savedmodel):
    raw = tmp_path / "raw.tfrecord"
    with tf.io.TFRecordWriter(str(raw)) as w:
        w.write(png_bytes(random_image(0, (4, 5, 3))))
        w.write(b"garbage")
        w.write(png_bytes(random_image(1, (4, 5, 3))))
    out = tmp_path / "out"
    summary = run_batch(BatchConfig(model=str(savedmodel), input=str(raw), output=str(out)))
    assert (summary.succeeded, summary.failed) == (2, 1)
    assert sorted(p.name for p in (out / "raw").iterdir()) == ["00000000.png", "00000002.png"]
    assert Image.open(out / "raw" / "00000002.png").size == (10, 8)
    results = jsonl((out / "prediction.results-00000-of-00001").read_text())
    assert {r["instance"]["index"] for r in results} == {0, 2}

    ex = tmp_path / "ex.tfrecords"
    with tf.io.TFRecordWriter(str(ex)) as w:
        for i in range(2):
            feature = {"image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[png_bytes(random_image(i))]))}
            w.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    out2 = tmp_path / "out2"
    summary = run_batch(BatchConfig(model=str(savedmodel), input=str(ex), output=str(out2),
                                    tfrecord_feature="image/encoded", output_format="jpeg"))
    assert (summary.succeeded, summary.failed) == (2, 0)
    assert Image.open(out2 / "ex" / "00000001.jpg").size == (32, 32)
    wrong = run_batch(BatchConfig(model=str(savedmodel), input=str(ex), output=str(tmp_path / "o3"),
                                  tfrecord_feature="hr"))
    assert (wrong.succeeded, wrong.failed) == (0, 2)
    assert "no feature 'hr'" in (tmp_path / "o3" / "prediction.errors_stats-00000-of-00001").read_text()


def test_jpeg_output_of_an_rgba_image_is_an_error_not_a_silent_change(tmp_path, savedmodel):
    _write(tmp_path / "in" / "a.png", random_image(0, (6, 6, 4)))
    _write(tmp_path / "in" / "b.png", random_image(1, (6, 6, 3)))
    summary = run_batch(BatchConfig(model=str(savedmodel), input=str(tmp_path / "in"), output=str(tmp_path / "o"),
                                    output_format="jpeg", num_shards=2))
    assert (summary.succeeded, summary.failed) == (1, 1)
    errors = [line for k in range(2) for line in jsonl((tmp_path / "o" / f"prediction.errors_stats-0000{k}-of-00002").read_text())]
    assert len(errors) == 1 and "alpha" in errors[0]["error"]["message"]
    assert not (tmp_path / "o" / "a.jpg").exists() and (tmp_path / "o" / "b.jpg").is_file()


def test_colliding_output_names_are_refused_before_running(tmp_path, savedmodel):
    _write(tmp_path / "in" / "a.png", random_image(0, (6, 6, 3)))
    (tmp_path / "in" / "a.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match="same output 'a.png'"):
        run_batch(BatchConfig(model=str(savedmodel), input=str(tmp_path / "in"), output=str(tmp_path / "o")))
    assert not (tmp_path / "o").exists()


def test_results_shards_partition_the_lines(tmp_path, savedmodel):
    for i in range(7):
        _write(tmp_path / "in" / f"i{i}.png", random_image(i, (4, 4, 3)))
    out = tmp_path / "o"
    run_batch(BatchConfig(model=str(savedmodel), input=str(tmp_path / "in"), output=str(out), num_shards=1))
    run_batch(BatchConfig(model=str(savedmodel), input=str(tmp_path / "in"), output=str(out), num_shards=3))
    names = sorted(p.name for p in out.glob("prediction.results-*"))
    assert names == [f"prediction.results-0000{k}-of-00003" for k in range(3)]  # the 1-shard file is gone
    lines = [json.loads(x) for n in names for x in (out / n).read_text().splitlines()]
    assert sorted(r["instance"] for r in lines) == sorted(str(tmp_path / "in" / f"i{i}.png") for i in range(7))


def test_resuming_into_another_jobs_output_is_refused(tmp_path, savedmodel, tiny_model):
    _write(tmp_path / "in" / "a.png", random_image(0, (6, 6, 3)))
    out = tmp_path / "o"
    assert run_batch(BatchConfig(model=str(savedmodel), input=str(tmp_path / "in"), output=str(out))).succeeded == 1
    tiny_model.save(tmp_path / "other.keras")
    other = BatchConfig(model=str(tmp_path / "other.keras"), input=str(tmp_path / "in"), output=str(out))
    with pytest.raises(ValueError, match="holds the outputs of a different job"):
        run_batch(other)
    redone = run_batch(BatchConfig(model=other.model, input=other.input, output=other.output, overwrite=True))
    assert (redone.succeeded, redone.skipped) == (1, 0)


def test_input_spellings_give_the_same_relative_names(tmp_path, monkeypatch):
    from sr_tf.batch import find_sources

    for name in ("a.png", "sub/b.png"):
        _write(tmp_path / "in" / name, random_image(0, (4, 4, 3)))
    (tmp_path / "in" / "readme.md").write_text("skipped in folders")
    monkeypatch.chdir(tmp_path)

    def rels(pattern, output="out"):
        return sorted(s.rel for s in find_sources(BatchConfig(model="m", input=pattern, output=output)))

    for spelling in ("in", "./in/", str(tmp_path / "in"), "in/**/*.png", "./in/**/*.png"):
        assert rels(spelling) == ["a.png", "sub/b.png"], spelling
    assert rels("in/*.png") == ["a.png"]
    monkeypatch.chdir(tmp_path / "in")
    assert rels(".", output="sr") == ["a.png", "sub/b.png"]
    assert rels("**/*.png", output="../o") == ["a.png", "sub/b.png"]


def test_16_bit_images_keep_full_precision(tmp_path, savedmodel, tiny_model):
    image = random_image(7, (8, 6, 3), np.uint16)
    assert (image % 257 != 0).mean() > 0.99  # values 8-bit precision would lose
    _write(tmp_path / "in" / "deep.png", image)
    summary = run_batch(BatchConfig(model=str(savedmodel), input=str(tmp_path / "in"), output=str(tmp_path / "out")))
    assert (summary.succeeded, summary.failed) == (1, 0)
    got = read_image(tmp_path / "out" / "deep.png")
    assert got.dtype == np.uint16 and got.shape == (16, 12, 3)
    assert (got % 257 != 0).mean() > 0.5, "8-bit values scaled by 257"
    want = np.round(np.clip(tiny_model(image[None].astype(np.float32) / 65535.0).numpy()[0] * 65535.0, 0, 65535))
    diff = np.abs(got.astype(np.float64) - want)
    assert diff.max() <= 2 and np.mean(diff > 1) < 1e-3, diff.max()


def test_batch_extra_installs_what_dataflow_needs():
    import configparser
    from pathlib import Path

    config = configparser.ConfigParser()
    config.read(Path(__file__).resolve().parents[2] / "setup.cfg")
    batch = config["options.extras_require"]["batch"].split()
    assert any(r.startswith("apache-beam[gcp]") for r in batch), batch  # DataflowRunner's dependencies


def test_outputs_damaged_after_a_run_are_named_and_computed_again(tmp_path, savedmodel, caplog):
    src, out = tmp_path / "in", tmp_path / "out"
    for i in range(3):
        _write(src / f"img{i}.png", random_image(10 + i, (12, 16, 3)))
    config = BatchConfig(model=str(savedmodel), input=str(src), output=str(out))
    assert run_batch(config).succeeded == 3
    first = {p.name: p.read_bytes() for p in out.glob("*.png")}
    assert sorted(first) == ["img0.png", "img1.png", "img2.png"]
    (out / "img0.png").write_bytes(first["img0.png"][:-9])  # cut off
    flipped = bytearray(first["img1.png"])
    flipped[len(flipped) // 2] ^= 0xFF  # same size: only the SHA-256 can tell
    (out / "img1.png").write_bytes(bytes(flipped))
    with caplog.at_level("WARNING", logger="sr_tf.batch.verify"):
        again = run_batch(config)
    assert (again.succeeded, again.failed, again.skipped) == (3, 0, 1)  # img2 kept, the damaged two redone
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == first
    size = len(first["img0.png"])
    assert sorted(r.getMessage() for r in caplog.records if r.name == "sr_tf.batch.verify") == [
        f"{out / 'img0.png'}: output of an earlier run is truncated: {size - 9} bytes, {size} recorded; "
        "computing it again",
        f"{out / 'img1.png'}: output of an earlier run is corrupt: its SHA-256 differs from the recorded one; "
        "computing it again",
    ]
    assert sorted(p.name for p in (out / ".sr-tf-batch-records").glob("*.json")) == [f"{n}.json" for n in sorted(first)]


def test_outputs_keep_the_inputs_metadata_unless_stripped(tmp_path, savedmodel):
    import io
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from metadata_helpers import assert_metadata_kept, tagged_photo

    src = tmp_path / "in"
    src.mkdir()
    (src / "turned.jpg").write_bytes(tagged_photo("JPEG", random_image(6, (6, 4, 3)), orientation=6))
    (src / "rgb.png").write_bytes(tagged_photo("PNG", random_image(7, (6, 4, 3)), dpi=300))
    (src / "rgba.png").write_bytes(tagged_photo("PNG", random_image(8, (6, 4, 4))))  # the encoded-image path
    summary = run_batch(BatchConfig(model=str(savedmodel), input=str(src), output=str(tmp_path / "out"),
                                    output_format="same"))
    assert (summary.succeeded, summary.failed) == (3, 0)
    assert_metadata_kept((tmp_path / "out" / "turned.jpg").read_bytes(), "JPEG", (12, 8), scale=2)
    assert_metadata_kept((tmp_path / "out" / "rgb.png").read_bytes(), "PNG", (8, 12), scale=2, dpi=300)
    assert_metadata_kept((tmp_path / "out" / "rgba.png").read_bytes(), "PNG", (8, 12), scale=2)
    run_batch(BatchConfig(model=str(savedmodel), input=str(src), output=str(tmp_path / "bare"), strip_metadata=True))
    for name in ("turned.png", "rgb.png", "rgba.png"):
        with Image.open(io.BytesIO((tmp_path / "bare" / name).read_bytes())) as bare:
            assert bare.info == {} and not bare.getexif(), name


def test_color_fix_is_for_models_a_savedmodel_has_its_exports(savedmodel):
    from sr_tf.batch.predictor import load_predictor

    with pytest.raises(ValueError, match="color_fix="):
        BatchConfig(model="m", input="i", output="o", color_fix="gamma")
    with pytest.raises(ValueError, match="exported with"):
        load_predictor(str(savedmodel), color_fix="adain")
