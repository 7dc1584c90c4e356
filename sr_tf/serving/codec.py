"""TF Serving's REST JSON encoding of tensors (row and columnar formats, `b64`, NaN/Infinity).

Follows `tensorflow_serving/util/json_tensor.cc`: a request holds either `instances` (row format:
a list with one entry per batch element; with several inputs each entry is an object keyed by
input name) or `inputs` (columnar: one tensor, or an object of named tensors). Binary values are
`{"b64": "..."}`. `NaN`, `Infinity` and `-Infinity` are bare tokens in both directions; integer
dtypes reject `1.0`. A float output whose values are all whole numbers (an upscaled image's 0-255
pixels) is written as integers: TF Serving's JSON mapping takes any JSON number for DT_FLOAT
(its examples include `0`), and integers take a third fewer bytes and about half the time to write and to parse.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import gc
import json
from typing import Any

import numpy as np
import orjson

from sr_tf.serving.errors import invalid

# tensorflow::DataTypeString names, used in error messages.
_TF_NAMES = {
    "float32": "float", "float64": "double", "float16": "half", "int8": "int8", "int16": "int16",
    "int32": "int32", "int64": "int64", "uint8": "uint8", "uint16": "uint16", "uint32": "uint32",
    "uint64": "uint64", "bool": "bool", "object": "string", "bytes": "string",
}


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One signature input or output: its dtype (numpy; `object` for strings) and shape (None dims unknown)."""

    dtype: np.dtype
    shape: tuple[int | None, ...] | None

    @property
    def is_string(self) -> bool:
        return self.dtype == np.dtype(object)

    @property
    def tf_name(self) -> str:
        return _TF_NAMES.get(self.dtype.name, self.dtype.name)


@contextlib.contextmanager
def gc_paused():
    """Pauses the cyclic garbage collector while a large JSON tensor becomes lists and back.

    Decoding a 256x256x3 tensor creates ~65k small lists; each allocation burst triggers a
    collection that walks every object in the process (TensorFlow's are many), which made
    decoding 5x slower than the parse itself. The lists hold no cycles, so pausing is safe.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


MAX_DEPTH = 1024  # orjson's nesting limit, enforced while it parses


def count_values(body: bytes) -> int:
    """An upper bound of the values and containers a JSON body parses into, counted from its bytes
    (separators and brackets; ones inside strings count too), so a body's parsed size is bounded
    before the parser allocates anything."""
    return body.count(b",") + body.count(b"[") + body.count(b"{") + 1


def loads(body: bytes, max_values: int | None = None) -> Any:
    """Parses a JSON body; bare NaN/Infinity/-Infinity are accepted (as TF Serving does).

    At most `max_values` values (see `count_values`) and `MAX_DEPTH` levels of nesting.

    Raises:
      ServingError: INVALID_ARGUMENT naming the problem ("JSON Parse error: ...").
    """
    if max_values is not None:
        values = count_values(body)
        if values > max_values:
            raise invalid(f"JSON Parse error: the body holds about {values} values, more than the limit "
                          f"of {max_values} (--max-json-values)")
    try:
        with gc_paused():
            return orjson.loads(body)
    except orjson.JSONDecodeError as fast_error:
        if "depth limit" in str(fast_error):
            raise invalid(f"JSON Parse error: nesting deeper than {MAX_DEPTH} levels") from None
        if not any(token in body for token in (b"NaN", b"Infinity")):
            raise invalid(f"JSON Parse error: {fast_error}") from None
        try:  # the standard library parser accepts the NaN / Infinity tokens orjson refuses
            return json.loads(body)
        except RecursionError:
            raise invalid(f"JSON Parse error: nesting deeper than {MAX_DEPTH} levels") from None
        except (ValueError, UnicodeDecodeError):
            raise invalid(f"JSON Parse error: {fast_error}") from None


# --- JSON -> numpy ------------------------------------------------------------------------
def json_type(value: Any) -> str:
    """TF Serving's name of a JSON value's type ("Number", "Array", ...), for messages."""
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, (int, float)):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, dict):
        return "Object"
    return "Null"


def _type_error(value: Any, info: TensorInfo) -> Exception:
    text = json.dumps(value) if not isinstance(value, (list, dict)) else json_type(value)
    return invalid(f"JSON Value: {text} Type: {json_type(value)} is not of expected type: {info.tf_name}")


def _decode_b64(obj: dict) -> bytes:
    if len(obj) != 1 or "b64" not in obj:
        raise invalid(f"JSON object: does not have named input: b64. Received keys: {sorted(obj)}")
    try:
        return base64.b64decode(obj["b64"], validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise invalid("Unable to base64 decode") from None


def _shape_and_check(value: Any, info: TensorInfo) -> tuple[int, ...]:
    """Shape of a nested-list value, checking leaf types and regularity (the slow path)."""
    if isinstance(value, list):
        if not value:
            return (0,)
        shapes = [_shape_and_check(v, info) for v in value]
        first = shapes[0]
        for s in shapes[1:]:
            if int(np.prod(s)) != int(np.prod(first)):
                raise invalid(f"Expecting tensor size: {int(np.prod(first))} but got: {int(np.prod(s))}")
            if s != first:
                raise invalid(f"Expecting shape {list(first)} but got: {list(s)}")
        return (len(value), *first)
    if info.is_string:
        if isinstance(value, dict):
            _decode_b64(value)
        elif not isinstance(value, str):
            raise _type_error(value, info)
        return ()
    kind = info.dtype.kind
    if kind == "b":
        ok = isinstance(value, bool)
    elif kind in "iu":
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok:
        raise _type_error(value, info)
    return ()


def _strings(value: Any) -> Any:
    if isinstance(value, list):
        return [_strings(v) for v in value]
    if isinstance(value, dict):
        return _decode_b64(value)
    return value.encode("utf-8")


def to_array(value: Any, info: TensorInfo, may_hold_bools: bool = True) -> np.ndarray:
    """A JSON value (nested lists, numbers, strings, `{"b64": ...}`) as a numpy array of `info.dtype`.

    `may_hold_bools=False` (the body has no `true`/`false` token) skips the per-element type walk
    that numpy would otherwise need to tell `true` from `1` in a numeric tensor.
    """
    if info.is_string:
        _shape_and_check(value, info)
        out = np.empty(np.shape(value) if isinstance(value, list) else (), dtype=object)
        flat = _strings(value)
        if isinstance(value, list):
            out[...] = _fill_object(flat, out.shape)
        else:
            out[()] = flat
        return out
    try:
        arr = np.asarray(value)
    except ValueError:  # ragged
        arr = None
    if arr is not None and arr.dtype.kind in "fiub" and arr.dtype != object:
        kind, target = arr.dtype.kind, info.dtype.kind
        if (target == "b") == (kind == "b") and not (target in "iu" and kind == "f"):
            if may_hold_bools and target != "b":
                _shape_and_check(value, info)  # numpy turns a stray `true` into 1
            return arr.astype(info.dtype, copy=False)
    _shape_and_check(value, info)  # raises the precise error
    return np.asarray(value, dtype=info.dtype)


def _fill_object(flat: list, shape: tuple[int, ...]) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        v = flat
        for i in index:
            v = v[i]
        out[index] = v
    return out


def _check_shape(name: str, arr: np.ndarray, info: TensorInfo) -> None:
    if info.shape is None:
        return
    if arr.ndim != len(info.shape) or any(d is not None and d != a for d, a in zip(info.shape, arr.shape, strict=False)):
        want = [-1 if d is None else d for d in info.shape]
        raise invalid(f"Input '{name}' has shape {list(arr.shape)}, which does not match the signature's shape {want}")


def parse_predict_request(body: Any, inputs: dict[str, TensorInfo],
                          may_hold_bools: bool = True) -> tuple[dict[str, np.ndarray], str]:
    """Turns a parsed `:predict` body into named numpy inputs; returns (inputs, "row" | "columnar").

    Pass `may_hold_bools=False` when the raw body has no `true`/`false` token (a fast path).
    """
    try:
        return _parse_predict_request(body, inputs, may_hold_bools)
    except RecursionError:  # tensors nested deeper than Python's stack
        raise invalid("JSON Value: nested too deeply to be a tensor") from None


def _parse_predict_request(body: Any, inputs: dict[str, TensorInfo],
                           may_hold_bools: bool) -> tuple[dict[str, np.ndarray], str]:
    if not isinstance(body, dict):
        raise invalid("JSON Parse error: request body is not a JSON object")
    if "instances" in body and "inputs" in body:
        raise invalid("Not formatted correctly expecting only one of 'inputs' or 'instances' keys exist")
    if "instances" in body:
        arrays, fmt = _parse_rows(body["instances"], inputs, may_hold_bools), "row"
    elif "inputs" in body:
        arrays, fmt = _parse_columns(body["inputs"], inputs, may_hold_bools), "columnar"
    else:
        raise invalid("Missing 'inputs' or 'instances' key")
    for name, arr in arrays.items():
        _check_shape(name, arr, inputs[name])
    return arrays, fmt


def _is_named(value: Any, inputs: dict[str, TensorInfo]) -> bool:
    return isinstance(value, dict) and not (set(value) == {"b64"} and len(inputs) == 1)


def _parse_rows(instances: Any, inputs: dict[str, TensorInfo], bools: bool) -> dict[str, np.ndarray]:
    if not isinstance(instances, list):
        raise invalid("Expecting 'instances' to be an list/array")
    if not instances:
        raise invalid("No instances found in 'instances' list")
    named = _is_named(instances[0], inputs)
    if not named and len(inputs) != 1:
        raise invalid(f"Expecting object but got list at item 0 of input list; the signature has inputs {sorted(inputs)}")
    if not named:
        (name, info), = inputs.items()
        try:
            return {name: to_array(instances, info, bools)}
        except Exception:
            _explain_rows(instances, {name: info}, named=False)
            raise
    columns: dict[str, list] = {k: [] for k in inputs}
    for i, inst in enumerate(instances):
        if not isinstance(inst, dict) or set(inst) != set(inputs):
            got = sorted(inst) if isinstance(inst, dict) else json_type(inst)
            raise invalid(
                f"Failed to process element: {i} of 'instances' list. Error: Invalid argument: "
                f"Expecting object with keys {sorted(inputs)} but got: {got}"
            )
        for k in inputs:
            columns[k].append(inst[k])
    out = {}
    for name, info in inputs.items():
        try:
            out[name] = to_array(columns[name], info, bools)
        except Exception:
            _explain_rows(instances, {name: info}, named=True)
            raise
    return out


def _explain_rows(instances: list, inputs: dict[str, TensorInfo], named: bool) -> None:
    """Re-checks the rows one by one to report which element is wrong, as TF Serving does."""
    first: dict[str, tuple] = {}
    for i, inst in enumerate(instances):
        for name, info in inputs.items():
            value = inst[name] if named else inst
            try:
                shape = _shape_and_check(value, info)
                if name not in first:
                    first[name] = shape
                elif int(np.prod(shape)) != int(np.prod(first[name])):
                    raise invalid(f"Expecting tensor size: {int(np.prod(first[name]))} but got: {int(np.prod(shape))}")
                elif shape != first[name]:
                    raise invalid(f"Expecting shape {list(first[name])} but got: {list(shape)}")
            except Exception as err:
                msg = getattr(err, "message", str(err))
                raise invalid(
                    f"Failed to process element: {i} of 'instances' list. Error: Invalid argument: {msg}"
                ) from None


def _parse_columns(value: Any, inputs: dict[str, TensorInfo], bools: bool) -> dict[str, np.ndarray]:
    if _is_named(value, inputs):
        missing = set(inputs) - set(value)
        extra = set(value) - set(inputs)
        if missing or extra:
            raise invalid(
                f"Expecting inputs {sorted(inputs)} but got: {sorted(value)}"
                + (f" (missing {sorted(missing)})" if missing else "")
            )
        return {k: to_array(value[k], info, bools) for k, info in inputs.items()}
    if len(inputs) != 1:
        raise invalid(f"Expecting an object with named inputs {sorted(inputs)} in 'inputs'")
    (name, info), = inputs.items()
    return {name: to_array(value, info, bools)}


# --- numpy -> JSON ------------------------------------------------------------------------
_NONFINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _array_text(arr: np.ndarray) -> str:
    """JSON text of a float array holding NaN/Infinity (the rare, slow path)."""
    if arr.ndim == 0:
        text = str(arr.item() if arr.dtype.kind != "f" else arr.dtype.type(arr))
        return _NONFINITE.get(text, text)
    return "[" + ",".join(_array_text(a) for a in arr) + "]"


def _jsonable(arr: Any, alias: str, raw: list[str]) -> Any:
    arr = np.asarray(arr)
    if arr.dtype == object or arr.dtype.kind in "SU":
        as_b64 = alias.endswith("_bytes")

        def conv(v):
            v = v if isinstance(v, bytes) else str(v).encode()
            if as_b64:
                return {"b64": base64.b64encode(v).decode("ascii")}
            return v.decode("utf-8", errors="replace")

        return np.vectorize(conv, otypes=[object])(arr).tolist() if arr.ndim else conv(arr.item())
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raw.append(_array_text(arr))
        return f"\x00SRTF{len(raw) - 1}\x00"
    if arr.ndim and arr.dtype.kind == "f" and _whole_numbers(arr):
        return arr.astype(np.int64)
    return arr[()] if arr.ndim == 0 else arr


def _whole_numbers(arr: np.ndarray) -> bool:
    """All values are integers that a float64 (what JSON readers parse numbers into) holds exactly."""
    return bool(np.abs(arr).max(initial=0) < 2**53 and np.array_equal(arr, np.trunc(arr)))


def format_predict_response(outputs: dict[str, np.ndarray], fmt: str) -> bytes:
    """JSON body for `:predict`: `{"predictions": ...}` (row) or `{"outputs": ...}` (columnar)."""
    raw: list[str] = []
    if fmt == "row":
        if len(outputs) == 1:
            (name, arr), = outputs.items()
            obj: Any = {"predictions": _jsonable(arr, name, raw)}
        else:
            n = {a.shape[0] if a.ndim else 1 for a in outputs.values()}
            if len(n) != 1:
                raise invalid("Batch size for output tensors is not the same; use the columnar ('inputs') format")
            rows = []
            for i in range(n.pop()):
                rows.append({k: _jsonable(a[i], k, raw) for k, a in outputs.items()})
            obj = {"predictions": rows}
    else:
        if len(outputs) == 1:
            (name, arr), = outputs.items()
            obj = {"outputs": _jsonable(arr, name, raw)}
        else:
            obj = {"outputs": {k: _jsonable(a, k, raw) for k, a in outputs.items()}}
    text = orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)
    for i, piece in enumerate(raw):
        text = text.replace(f'"\\u0000SRTF{i}\\u0000"'.encode(), piece.encode())
    return text


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})
