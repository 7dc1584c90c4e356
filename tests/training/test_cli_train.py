import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from sr_tf.cli import main
from sr_tf.models import SRVGGNetCompact
from sr_tf.training.builders import build_model
from sr_tf.training.configs import load_config
from sr_tf.training.retrain import retrain
from sr_tf.training.trainer import init_generator_from

TINY = [
    "generator.kwargs.num_feat=8", "generator.kwargs.num_block=1", "generator.kwargs.scale=2",
    "data.scale=2", "data.batch_size=2", "data.hr_patch_size=16", "val_every=2", "checkpoint_every=2", "log_every=1",
]


def write_images(folder, shape, seed=0, step=10.0, count=3):
    """`count` smooth random PNGs (random walks along one axis) in a new `folder`."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = np.clip(np.cumsum(rng.normal(0, step, (*shape, 3)), axis=1) + 128, 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")
    return folder


@pytest.fixture
def image_dir(tmp_path):
    return write_images(tmp_path / "images", (24, 28))


def tags_in(log_dir):
    tags = set()
    for path in tf.io.gfile.glob(str(log_dir / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
    return tags


def test_train_cli_runs_resumes_and_logs(tmp_path, image_dir, capsys):
    out = tmp_path / "run"
    args = ["train", "--config", "srresnet", "--data", str(image_dir), "--val-split", "1", "--out", str(out),
            "--no-progress", *[a for s in TINY for a in ("--set", s)]]
    assert main([*args, "--steps", "2"]) == 0
    assert (out / "generator.keras").is_file() and (out / "config.json").is_file()
    assert tf.train.latest_checkpoint(str(out / "checkpoints")).endswith("ckpt-2")
    assert main([*args, "--steps", "3"]) == 0  # an existing run directory is resumed
    text = capsys.readouterr().out
    assert "at step 2" in text and "Done at step 3" in text
    assert {"train/g_loss", "train/pixel_loss", "train/g_lr", "val/psnr_y", "val/ssim_y", "val/lr_sr_hr"} <= tags_in(
        out / "logs")
    with pytest.raises(ValueError, match="already holds checkpoints"):
        main([*args, "--steps", "4", "--no-resume"])
    with pytest.raises(ValueError, match="different generator"):
        main([*args, "--steps", "4", "--set", "generator.kwargs.num_block=2"])

    # stage 2 starts from the stage-1 run's generator
    config = load_config("srresnet", TINY)
    model = build_model(config)
    model.build_all([None, 8, 8, 3], [None, 16, 16, 3])
    assert "ckpt-3" in init_generator_from(model, out)
    final = keras.saving.load_model(out / "generator.keras")
    for a, b in zip(model.generator.get_weights(), final.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_hr_downscale_validates_like_evaluate_and_reports_the_bicubic_baseline(tmp_path, capsys):
    import json
    import re

    folder = write_images(tmp_path / "photos", (48, 64), seed=1, step=6.0)
    args = ["train", "--config", "srresnet_small", "--data", str(folder), "--val-split", "1", "--hr-downscale", "2",
            "--out", str(tmp_path / "run"), "--no-progress", "--steps", "1",
            *[a for s in TINY for a in ("--set", s)]]
    assert main(args) == 0
    text = capsys.readouterr().out
    baseline = float(re.search(r"Bicubic baseline on the validation images: PSNR-Y ([0-9.]+) dB", text).group(1))
    assert "step 1: val PSNR-Y" in text
    # the same image through sr-tf evaluate (its own loading, degradation and bicubic code)
    assert main(["evaluate", "--data", str(folder / "img2.png"), "--scale", "2", "--hr-downscale", "2",
                 "--out", str(tmp_path / "report")]) == 0
    evaluated = json.loads((tmp_path / "report" / "results.json").read_text())
    assert baseline == pytest.approx(evaluated["mean"]["bicubic"]["psnr_y"], abs=2e-3)
    with pytest.raises(SystemExit, match="--hr-downscale works with --val-split"):
        main(["train", "--config", "srresnet_small", "--data", str(folder), "--hr-downscale", "2",
              "--out", str(tmp_path / "run2")])


def test_retrain_an_existing_generator_with_fit(image_dir):
    keras.utils.set_random_seed(0)
    generator = SRVGGNetCompact(num_feat=8, num_conv=1, upscale=2)
    generator(np.zeros((1, 8, 8, 3), np.float32))
    before = [w.copy() for w in generator.get_weights()]
    model, history = retrain(generator, image_dir, steps_per_epoch=2, epochs=1, hr_patch_size=16, batch_size=2,
                             val_folder=image_dir, verbose=0)
    assert np.isfinite(history.history["pixel_loss"][0]) and np.isfinite(history.history["val_psnr_y"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, generator.get_weights(), strict=True))
    assert model.eval_generator is generator
