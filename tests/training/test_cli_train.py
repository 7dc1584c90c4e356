import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from train_helpers import TINY, write_images

from sr_tf.cli import main
from sr_tf.models import SRVGGNetCompact
from sr_tf.training import load_config, retrain, train
from sr_tf.training.builders import build_model
from sr_tf.training.run import init_generator_from


@pytest.fixture
def image_dir(tmp_path):
    return write_images(tmp_path / "images", (24, 28))


def tags_in(log_dir):
    tags = set()
    for path in tf.io.gfile.glob(str(log_dir / "*" / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
    return tags


def test_train_cli_runs_resumes_and_logs(tmp_path, image_dir, capsys):
    out = tmp_path / "run"
    args = ["train", "--config", "srresnet", "--data", str(image_dir), "--val-split", "1", "--out", str(out),
            "--no-progress", *[a for s in TINY for a in ("--set", s)]]
    assert main([*args, "--steps", "2"]) == 0
    assert (out / "generator.keras").is_file() and (out / "config.json").is_file()
    assert (out / "best_generator.keras").is_file()
    assert sorted(p.name for p in (out / "checkpoints").glob("*.json")) == ["ckpt-000000002.json"]
    assert main([*args, "--steps", "4"]) == 0  # an existing run directory is resumed
    text = capsys.readouterr().out
    assert "Resumed from ckpt-000000002.json at step 2" in text and "Done at step 4" in text
    assert {"epoch_g_loss", "epoch_pixel_loss", "epoch_learning_rate", "epoch_psnr_y", "epoch_ssim_y"} <= tags_in(out / "logs")
    assert any(t.startswith("lr_sr_hr/") for t in tags_in(out / "logs"))
    assert main([*args, "--steps", "6", "--no-resume"]) == 2  # one line, no traceback
    assert "already holds checkpoints" in capsys.readouterr().err
    assert main([*args, "--steps", "6", "--set", "generator.kwargs.num_block=2"]) == 2
    assert "different generator" in capsys.readouterr().err

    # stage 2 starts from the stage-1 run's generator
    model = build_model(load_config("srresnet", TINY))
    model.build((None, 8, 8, 3))
    assert "ckpt-000000004" in init_generator_from(model, out)
    final = keras.saving.load_model(out / "generator.keras")
    for a, b in zip(model.generator.get_weights(), final.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_hr_downscale_validates_like_evaluate_and_reports_the_bicubic_baseline(tmp_path, capsys):
    folder = write_images(tmp_path / "photos", (48, 64), seed=1, step=6.0)
    args = ["train", "--config", "srresnet_small", "--data", str(folder), "--val-split", "1", "--hr-downscale", "2",
            "--out", str(tmp_path / "run"), "--no-progress", "--steps", "2",
            *[a for s in TINY for a in ("--set", s)]]
    assert main(args) == 0
    text = capsys.readouterr().out
    baseline = float(re.search(r"Bicubic baseline on the validation images: PSNR-Y ([0-9.]+) dB", text).group(1))
    assert "step 2: val_psnr_y" in text
    # the same image through sr-tf evaluate (its own loading, degradation and bicubic code)
    # training validates on LR as its pipeline makes it (rounded once): evaluate's "pipeline" convention
    assert main(["evaluate", "--data", str(folder / "img2.png"), "--scale", "2", "--hr-downscale", "2",
                 "--convention", "pipeline", "--out", str(tmp_path / "report")]) == 0
    evaluated = json.loads((tmp_path / "report" / "results.json").read_text())
    assert baseline == pytest.approx(evaluated["mean"]["bicubic"]["psnr_y"], abs=2e-3)


def test_hr_downscale_works_for_every_source(tmp_path):
    """--hr-downscale used to work only with --val-split; now the pipeline applies it to any source."""
    from sr_tf.data.records import BuildConfig, make_tfrecords

    folder = write_images(tmp_path / "photos", (48, 48), seed=3, count=2)
    records = tmp_path / "records"
    make_tfrecords(BuildConfig(hr_dir=str(folder), output_dir=str(records), num_shards=1, progress=False))
    tiny = [*TINY, "data.patch_size=24", "total_steps=2", "data.hr_downscale=2"]
    for data in ([f"data.path={str(folder)!r}", "data.cache_decoded=false"], [f"data.path={str(folder)!r}"],
                 [f"data.path={str(records)!r}", 'data.source="tfrecord"']):
        result = train(load_config("srresnet", [*tiny, *data]), verbose=0, log=lambda _: None)
        assert result.step == 2
    with pytest.raises(ValueError, match="smaller than patch_size=32"):  # 48 / 2 = 24 < 32: the downscale applies
        train(load_config("srresnet", [*TINY, "data.patch_size=32", "data.hr_downscale=2",
                                       f"data.path={str(records)!r}", 'data.source="tfrecord"']), verbose=0)


def test_early_stopping_counts_validations_without_gain(tmp_path, image_dir):
    config = load_config("srresnet", [*TINY, "optim.g_lr=0.0", "generator.kwargs.batch_norm=false", "total_steps=40",
                                      "early_stopping_patience=2",
                                      "checkpoint_every=20", f"data.path={str(image_dir)!r}",
                                      "data.val_split=1"])  # nothing learns: PSNR never improves
    result = train(config, tmp_path / "run", verbose=0, log=lambda _: None)
    assert result.stopped_early and result.step == 6  # best at step 2, then 2 validations without gain
    assert len(result.history["val_psnr_y"]) == 3
    assert (tmp_path / "run" / "best_generator.keras").is_file()
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("*.json")) == ["ckpt-000000006.json"]


def test_retrain_an_existing_generator_through_the_same_path(image_dir):
    keras.utils.set_random_seed(0)
    generator = SRVGGNetCompact(num_feat=8, num_conv=1, upscale=2)
    generator(np.zeros((1, 8, 8, 3), np.float32))
    before = [w.copy() for w in generator.get_weights()]
    result = retrain(generator, image_dir, steps_per_epoch=2, epochs=1, patch_size=16, batch_size=2,
                     val_folder=image_dir, verbose=0)
    assert np.isfinite(result.history["pixel_loss"][0]) and np.isfinite(result.history["val_psnr_y"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, generator.get_weights(), strict=True))
    assert result.model.eval_generator is generator


def test_a_generator_trained_in_bfloat16_is_saved_as_float32(tmp_path, image_dir):
    config = load_config("srresnet", [*TINY, "total_steps=2", 'mixed_precision="mixed_bfloat16"',
                                      f"data.path={str(image_dir)!r}"])
    result = train(config, tmp_path / "run", verbose=0, log=lambda _: None)
    assert result.model.generator.dtype_policy.name == "mixed_bfloat16"
    saved = keras.saving.load_model(tmp_path / "run" / "generator.keras")
    assert saved.dtype_policy.name == "float32" and saved.get_layer("conv_first").compute_dtype == "float32"
    for a, b in zip(saved.get_weights(), result.model.generator.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert keras.mixed_precision.global_policy().name == "float32"  # the run left the global policy alone


def test_auto_mixed_precision_follows_the_hardware(monkeypatch):
    from sr_tf.training import distribute

    monkeypatch.setattr(distribute, "cpu_has_bf16", lambda: True)
    assert distribute.resolve_mixed_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(distribute, "cpu_has_bf16", lambda: False)
    assert distribute.resolve_mixed_precision("auto") is None
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        distribute.resolve_mixed_precision("bf16")


def test_a_onednn_isa_limit_below_bfloat16_means_no_bfloat16(monkeypatch):
    from sr_tf.training import distribute

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert not distribute.cpu_has_bf16()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx512_core")
    assert not distribute.cpu_has_bf16()
    for limit in ("AVX512_CORE_BF16", "AVX512_CORE_AMX", "DEFAULT"):  # the CPU's own flags decide
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", limit)
        monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
        flags = Path("/proc/cpuinfo").read_text()
        assert distribute.cpu_has_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)


def test_one_training_data_config_with_the_pipelines_names_and_older_runs_still_read(tmp_path, image_dir, capsys):
    from sr_tf.training.configs import from_dict, to_dict
    from sr_tf.training.run import dataset_configs

    config = load_config("srresnet", [*TINY, f"data.path={str(image_dir)!r}", "data.val_split=1",
                                      "data.cache_decoded=false"])
    train_data, val_data = dataset_configs(config)
    assert (train_data.path, train_data.patch_size, train_data.cache_decoded, len(train_data.files)) == (
        str(image_dir), 16, False, 2)
    assert val_data is not None and len(val_data.files) == 1
    # a run directory written before: its config.json spells the data keys the old way
    old = to_dict(config)
    old["data"]["hr_patch_size"] = old["data"].pop("patch_size") + 8
    old["data"]["in_memory"] = old["data"].pop("cache_decoded")
    again = from_dict(json.loads(json.dumps(old)))
    assert (again.data.patch_size, again.data.cache_decoded) == (24, False)
    # a user's override with the old key is refused with the new one suggested, not ignored
    with pytest.raises(ValueError, match="data.patch_size"):
        load_config("srresnet", ["data.hr_patch_size=24"])
    with pytest.raises(ValueError, match=r"`data.path` is required"):
        dataset_configs(load_config("srresnet", TINY))
    # the CLI names its flags for the same library error
    args = ["train", "--config", "srresnet", "--data", str(image_dir), "--val-split", "3", "--out",
            str(tmp_path / "run"), *[a for s in TINY for a in ("--set", s)]]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--val-split must leave training images" in err and "Received: --val-split=3" in err, err
