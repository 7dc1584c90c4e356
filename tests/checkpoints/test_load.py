"""`load_checkpoint`, `convert_checkpoint` and `inspect_checkpoint` on a test-only architecture
(`tiny_arch`), against torch's own conv + pixel shuffle on the same weights."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from sr_tf.checkpoints import (
    CheckpointError,
    convert_checkpoint,
    inspect_checkpoint,
    load_checkpoint,
    registry,
)

from . import tiny_arch

torch = pytest.importorskip("torch")


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(registry, "ARCHITECTURES", (tiny_arch.__name__,))


def tiny_state(in_ch=3, scale=2, seed=0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return collections.OrderedDict([("head.weight", torch.randn(in_ch * scale * scale, in_ch, 3, 3, generator=gen) * .2),
                                    ("head.bias", torch.randn(in_ch * scale * scale, generator=gen) * .1)])


def torch_output(state: dict, x_nhwc: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(x_nhwc).permute(0, 3, 1, 2)
    y = torch.nn.functional.conv2d(x, state["head.weight"].float(), state["head.bias"].float(), padding=1)
    scale = round((state["head.weight"].shape[0] / state["head.weight"].shape[1]) ** 0.5)
    return torch.nn.functional.pixel_shuffle(y, scale).permute(0, 2, 3, 1).numpy()


def photo(h=13, w=9, c=3) -> np.ndarray:
    return np.random.default_rng(0).random((1, h, w, c), dtype=np.float32)


def save(state, path, **kwargs):
    torch.save(state, path, **kwargs)
    return path


def test_load_checkpoint_matches_torch(tmp_path, tiny):
    state = tiny_state()
    path = save({"params_ema": {f"module.{k}": v for k, v in state.items()}, "iter": 10}, tmp_path / "t.pth")
    model, found = load_checkpoint(path)
    assert found.name == "TinyConv" and found.params == {"in_channels": 3, "scale": 2, "kernel_size": 3}
    x = photo()
    np.testing.assert_allclose(np.asarray(model(x)), torch_output(state, x), atol=1e-5)


def test_a_broken_mapping_is_caught(tmp_path, tiny, monkeypatch):
    # The comparison above must notice a wrong channel order (assign without the pixel-shuffle permutation).
    state = tiny_state()
    path = save(state, tmp_path / "t.pth")

    def naive(model, st):
        model.conv.kernel.assign(st.conv("head.weight"))
        model.conv.bias.assign(st.take("head.bias"))

    monkeypatch.setattr(tiny_arch, "assign", naive)
    model, _ = load_checkpoint(path)
    x = photo()
    assert np.abs(np.asarray(model(x)) - torch_output(state, x)).max() > 0.05


def test_convert_writes_a_keras_file_that_gives_the_same_output(tmp_path, tiny):
    import keras

    state = tiny_state(scale=3)
    path = save(state, tmp_path / "t.pth", _use_new_zipfile_serialization=False)
    out, found = convert_checkpoint(path, tmp_path / "tiny.keras")
    assert found.params["scale"] == 3 and sorted(p.name for p in tmp_path.iterdir()) == ["t.pth", "tiny.keras"]
    x = photo(11, 7)
    np.testing.assert_allclose(np.asarray(keras.saving.load_model(out)(x)), torch_output(state, x), atol=1e-5)
    with pytest.raises(FileExistsError):
        convert_checkpoint(path, out)
    convert_checkpoint(path, out, overwrite=True)
    with pytest.raises(ValueError, match="output="):
        convert_checkpoint(path, tmp_path / "tiny.h5")


def test_a_failed_conversion_writes_nothing(tmp_path, tiny):
    path = save({"head.weight": torch.ones(12, 3, 3, 3), "head.bias": torch.ones(12), "extra": torch.ones(1)},
                tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match="unknown architecture"):
        convert_checkpoint(path, tmp_path / "x.keras")
    assert [p.name for p in tmp_path.iterdir()] == ["extra.pth"]


def test_unused_or_misshapen_tensors_fail_naming_them(tmp_path, tiny, monkeypatch):
    path = save(tiny_state(), tmp_path / "t.pth")
    monkeypatch.setattr(tiny_arch, "assign", lambda model, st: st.conv("head.weight"))
    with pytest.raises(CheckpointError, match=r"t\.pth.*did not use 1 tensors.*head\.bias"):
        load_checkpoint(path)


def test_inspect_a_known_architecture(tmp_path, tiny):
    state = {k: v.half() for k, v in tiny_state().items()}
    path = save({"params": state, "epoch": 5, "iter": 1234}, tmp_path / "t.pth")
    info = inspect_checkpoint(path)
    assert info == {
        "path": str(path), "format": "torch zip", "wrapper": "params", "prefix": "", "architecture": "TinyConv",
        "params": {"in_channels": 3, "scale": 2, "kernel_size": 3}, "scale": 2, "in_channels": 3,
        "out_channels": None, "tensors": 2, "parameters": 12 * 27 + 12, "buffers": 0, "dtype": "float16",
        "dtypes": {"float16": 2}, "metadata": {"epoch": 5, "iter": 1234}, "unrecognised": None}


def test_inspect_safetensors_metadata(tmp_path, tiny):
    from safetensors.torch import save_file

    path = tmp_path / "t.safetensors"
    save_file(dict(tiny_state()), path, metadata={"trained_for": "denoise"})
    info = inspect_checkpoint(path)
    assert info["architecture"] == "TinyConv" and info["metadata"] == {"trained_for": "denoise"}
    assert info["format"] == "safetensors" and info["dtype"] == "float32"


def test_inspect_an_unknown_architecture_says_what_it_saw(tmp_path, tiny):
    path = save({"body.0.weight": torch.ones(8, 4, 3, 3), "body.0.bias": torch.ones(8), "tail.weight": torch.ones(2)},
                tmp_path / "u.pth")
    info = inspect_checkpoint(path)
    assert info["architecture"] is None and info["tensors"] == 3
    line = info["unrecognised"]
    assert "\n" not in line
    assert "3 tensors" in line and "body.* (2)" in line and "tail.* (1)" in line and "takes 4 channels" in line
    assert "TinyConv" in line
    with pytest.raises(CheckpointError, match=r"u\.pth: unknown architecture"):
        load_checkpoint(path)


def test_buffers_are_not_counted_as_parameters(tmp_path, tiny):
    path = save({"conv.weight": torch.ones(2, 1, 3, 3), "bn.running_mean": torch.ones(2),
                 "bn.num_batches_tracked": torch.tensor(5), "attn.attn_mask_0": torch.ones(4, 8, 8),
                 "attn.relative_position_index": torch.ones(9, 9, dtype=torch.int64), "mean": torch.ones(3)},
                tmp_path / "b.pth")
    info = inspect_checkpoint(path)
    assert info["parameters"] == 18 and info["buffers"] == 2 + 1 + 256 + 81 + 3
