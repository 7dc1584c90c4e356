import keras
import pytest

from sr_tf.training.builders import build_model, learning_rate, loss_weight
from sr_tf.training.configs import RECIPES, from_dict, load_config, recipe, to_dict
from sr_tf.training.models import SRGAN, SRModel


def test_recipes_round_trip_and_paper_values():
    for name in RECIPES:
        assert from_dict(to_dict(recipe(name))) == recipe(name)
    s2 = recipe("esrgan_stage2")
    assert (s2.loss.gan_type, s2.loss.gan_weight, s2.loss.pixel_weight, s2.loss.perceptual_weight) == (
        "relativistic", 5e-3, 1e-2, 1.0)
    assert s2.optim.milestones == [50_000, 100_000, 200_000, 300_000] and s2.optim.gamma == 0.5
    assert recipe("esrgan_stage1").optim.g_lr == 2e-4
    assert recipe("srgan").loss.perceptual_layers == {"relu5_4": 1.0}
    assert recipe("realesrgan").discriminator.name == "unet_sn" and recipe("realesrgan").ema_decay == 0.999
    with pytest.raises(ValueError, match="name='edsr'"):
        recipe("edsr")


def test_toml_file_and_cli_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('base = "esrgan_stage2"\ntotal_steps = 10\n[optim]\ng_lr = 3e-4\n[generator.kwargs]\nnum_block = 2\n')
    config = load_config(str(path), ["optim.milestones=[2, 4]", "ema_decay=0.99", 'mixed_precision="mixed_bfloat16"'])
    assert config.total_steps == 10 and config.optim.g_lr == 3e-4 and config.optim.milestones == [2, 4]
    assert config.generator.kwargs == {"scale": 4, "num_block": 2}  # merged, not replaced
    assert config.ema_decay == 0.99 and config.mixed_precision == "mixed_bfloat16"
    assert config.loss.gan_type == "relativistic"  # untouched values stay
    with pytest.raises(ValueError, match="optim.nope"):
        load_config("srgan", ["optim.nope=1"])
    with pytest.raises(ValueError, match="optim.g_lr"):
        load_config("srgan", ['optim.g_lr="fast"'])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        load_config("srgan", ["optim.g_lr"])
    with pytest.raises(ValueError, match="recipe name"):
        load_config(str(tmp_path / "missing.toml"))


def test_yaml_file_matches_the_same_toml_file(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('base = "esrgan_stage2"\ntotal_steps = 10\n[optim]\ng_lr = 3e-4\nmilestones = [2, 4]\n'
                    '[generator.kwargs]\nnum_block = 2\n')
    yaml = tmp_path / "run.yaml"
    yaml.write_text("base: esrgan_stage2\ntotal_steps: 10\noptim:\n  g_lr: 3e-4\n  milestones: [2, 4]\n"
                    "generator:\n  kwargs:\n    num_block: 2\n")
    from_yaml = load_config(str(yaml))
    assert from_yaml == load_config(str(toml))
    assert from_yaml.optim.g_lr == 3e-4  # a float, though YAML 1.1 reads `3e-4` as a string
    (tmp_path / "list.yml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        load_config(str(tmp_path / "list.yml"))
    (tmp_path / "bad.yaml").write_text("optim: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(str(tmp_path / "bad.yaml"))
    (tmp_path / "typo.yaml").write_text("optim:\n  g_lrr: 1.0\n")
    with pytest.raises(ValueError, match="optim.g_lrr"):
        load_config(str(tmp_path / "typo.yaml"))


def test_schedules():
    s2 = recipe("esrgan_stage2").optim
    lr = learning_rate(s2, s2.g_lr)
    assert [float(lr(s)) for s in (0, 50_001, 100_001, 200_001, 300_001)] == pytest.approx(
        [1e-4, 5e-5, 2.5e-5, 1.25e-5, 6.25e-6])
    s1 = recipe("esrgan_stage1").optim
    cosine = learning_rate(s1, s1.g_lr)
    assert float(cosine(0)) == pytest.approx(2e-4)
    assert float(cosine(125_000)) == pytest.approx((2e-4 + 1e-7) / 2, rel=1e-3)  # half-way down the cosine
    assert float(cosine(250_000)) == pytest.approx(2e-4)  # restart
    w = recipe("perpix").loss
    pixel, percep = loss_weight(w.pixel_weight, "p"), loss_weight(w.perceptual_weight, "q")
    assert [(float(pixel(s)), float(percep(s))) for s in (0, 15_001, 20_001)] == [(10, 1), (10, 10), (1, 10)]
    with pytest.raises(ValueError, match="boundaries"):
        loss_weight({"boundaries": [1], "values": [1.0]}, "loss.pixel_weight")


def test_build_model_from_tiny_recipes():
    config = load_config("esrgan_stage2", [
        "generator.kwargs.num_feat=8", "generator.kwargs.num_block=1", "generator.kwargs.num_grow_ch=4",
        "discriminator.kwargs.num_feat=8", "discriminator.kwargs.input_size=32", "discriminator.kwargs.num_stages=2",
        "loss.vgg_weights=none", 'loss.perceptual_layers={conv2_2 = 1.0}',
    ])
    model = build_model(config)
    assert isinstance(model, SRGAN) and model.gan_type == "relativistic"
    assert model.feature_extractor.taps == ("conv2_2",)
    assert isinstance(model.g_optimizer._learning_rate, keras.optimizers.schedules.PiecewiseConstantDecay)
    plain = build_model(load_config("srcnn"))
    assert isinstance(plain, SRModel) and not isinstance(plain, SRGAN) and plain.pixel_loss_name == "mse"
