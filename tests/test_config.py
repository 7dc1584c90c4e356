"""The one config base: every config dataclass reads dicts, files and KEY=VALUE overrides the same way."""

from __future__ import annotations

import dataclasses

import pytest

from sr_tf.config import ConfigBase


def _config_classes():
    import sr_tf.batch.config
    import sr_tf.batch.vertex
    import sr_tf.data.config
    import sr_tf.data.degradations
    import sr_tf.data.records
    import sr_tf.evaluation.workflow
    import sr_tf.export
    import sr_tf.serving.batching
    import sr_tf.serving.models
    import sr_tf.serving.rest
    import sr_tf.serving.server
    import sr_tf.training.configs
    import sr_tf.video.config  # noqa: F401

    def walk(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    return sorted(set(walk(ConfigBase)), key=lambda c: c.__qualname__)


def test_every_config_dataclass_is_on_the_base():
    import subprocess

    found = {c.__name__ for c in _config_classes()}
    # every dataclass named *Config in the library
    out = subprocess.run(["git", "grep", "-h", "-A1", "-E", "@(dataclasses\\.)?dataclass", "--", "sr_tf"],
                         capture_output=True, text=True, check=True, cwd=str(__import__("pathlib").Path(__file__).parents[1])).stdout
    declared = {line.split("class ", 1)[1].split("(")[0].split(":")[0] for line in out.splitlines()
                if line.startswith("class ") and "Config" in line}
    assert declared and declared <= found, sorted(declared - found)


def _defaults_constructible():
    """Config classes whose fields all have defaults (the others are built with required values)."""
    return [c for c in _config_classes()
            if all(f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
                   for f in dataclasses.fields(c) if f.init)]


@pytest.mark.parametrize("cls", _defaults_constructible(), ids=lambda c: c.__name__)
def test_round_trip_through_a_dict(cls):
    config = cls()
    assert cls.from_dict(config.to_dict()) == config


def test_unknown_keys_suggest_the_nearest_and_types_are_checked():
    from sr_tf.training.configs import TrainConfig

    with pytest.raises(ValueError, match="did you mean 'data.batch_size'"):
        TrainConfig().with_overrides(["data.batchsize=4"])
    with pytest.raises(ValueError, match="'total_steps' expects"):
        TrainConfig().with_overrides(["total_steps=many"])
    assert TrainConfig().with_overrides(["optim.g_lr=2e-4"]).optim.g_lr == 2e-4


def test_frozen_configs_take_overrides_and_still_validate(tmp_path):
    from sr_tf.export import ExportConfig

    assert dataclasses.is_dataclass(ExportConfig) and ExportConfig.__dataclass_params__.frozen
    assert ExportConfig().with_overrides(["tile_size=64", "precision=bfloat16"]) == ExportConfig(64, precision="bfloat16")
    with pytest.raises(ValueError, match="tile_size"):
        ExportConfig().with_overrides(["tile_size=-1"])
    (tmp_path / "export.yaml").write_text("tile_pad: 8\nwarmup: false\n")
    assert ExportConfig.from_file(tmp_path / "export.yaml") == ExportConfig(tile_pad=8, warmup=False)
    with pytest.raises(ValueError, match="Unknown config key 'tile'"):
        ExportConfig.from_dict({"tile": 3})
