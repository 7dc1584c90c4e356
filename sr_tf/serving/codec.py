"""TF Serving's REST JSON encoding of tensors (row and columnar formats, `b64`, NaN/Infinity).

Follows `tensorflow_serving/util/json_tensor.cc`: a request holds either `instances` (row format:
a list with one entry per batch element; with several inputs each entry is an object keyed by
input name) or `inputs` (columnar: one tensor, or an object of named tensors). Binary values are
`{"b64": "..."}`. `NaN`, `Infinity` and `-Infinity` are bare tokens in both directions; integer
dtypes reject `1.0`. Floats are written as TF Serving's `WriteDecimal` writes them (`217.0`, `0.5`,
`9e+06`). Error texts are TF Serving's, so clients matching on them see no difference.
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

from sr_tf.serving.errors import Code, ServingError, invalid

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


# rapidjson's messages (GetParseError_En) for what orjson reports, so clients see TF Serving's text.
_PARSE_MESSAGES = (
    ("expected a string key", "Missing a name for object member."),
    ("expected ':'", "Missing a colon after a name of object member."),
    ("expected ',' or '}'", "Missing a comma or '}' after an object member."),
    ("expected ',' or ']'", "Missing a comma or ']' after an array element."),
    ("end of data", "Invalid value."),
    ("unexpected character", "Invalid value."),
    ("escape", "Invalid escape character in string."),
    ("utf-8", "Invalid encoding in string."),
    ("control character", "Invalid encoding in string."),
    ("number", "Number too big to be stored in double."),
)


def _parse_error(err: orjson.JSONDecodeError) -> Exception:
    text = str(err.msg).lower()
    message = next((m for key, m in _PARSE_MESSAGES if key in text), "Invalid value.")
    return invalid(f"JSON Parse error: {message} at offset: {err.pos}")


def loads(body: bytes, max_values: int | None = None) -> Any:
    """Parses a JSON body as TF Serving's `ParseJson` (util/json_tensor.cc) does: bare
    NaN/Infinity/-Infinity are accepted, content after the document is ignored
    (rapidjson's kParseStopWhenDoneFlag) and errors carry rapidjson's texts
    ("JSON Parse error: The document is empty", "JSON Parse error: Invalid value. at offset: 0").

    At most `max_values` values (see `count_values`) and `MAX_DEPTH` levels of nesting (TF
    Serving's iterative parser has no depth limit; a deliberate difference).

    Raises:
      ServingError: INVALID_ARGUMENT naming the problem ("JSON Parse error: ...").
    """
    if not body.strip():
        # json_tensor.cc:475 ("" itself); rapidjson gives the same text for whitespace only
        raise invalid("JSON Parse error: The document is empty" + ("" if not body else f". at offset: {len(body)}"))
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
        if "content after document" in str(fast_error):
            return loads(body[:fast_error.pos])  # rapidjson stops when the document is done
        if not any(token in body for token in (b"NaN", b"Infinity", b"Inf")):
            raise _parse_error(fast_error) from None
        try:  # the standard library parser accepts the NaN / Infinity tokens orjson refuses
            text = body.decode("utf-8")
            value, end = json.JSONDecoder(parse_constant=_constant).raw_decode(text.lstrip())
            return value
        except RecursionError:
            raise invalid(f"JSON Parse error: nesting deeper than {MAX_DEPTH} levels") from None
        except (ValueError, UnicodeDecodeError):
            raise _parse_error(fast_error) from None


def _constant(name: str) -> float:
    return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


# --- JSON -> numpy ------------------------------------------------------------------------
def json_type(value: Any) -> str:
    """rapidjson's name of a JSON value's type ("Number", "Array", "True", ...), as TF Serving's
    `JsonTypeString` writes it in messages."""
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, (int, float)):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, dict):
        return "Object"
    return "Null"


_DEBUG_LIMIT = 256  # kMaxJsonDebugStringBytes


def _number_text(value: Any) -> str:
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    return str(value)


def _debug_tokens(value: Any, indent: int):
    """rapidjson PrettyWriter tokens (kFormatSingleLineArray, 4-space indent) of a JSON value."""
    if isinstance(value, dict):
        if not value:
            yield "{}"
            return
        yield "{"
        for i, (k, v) in enumerate(value.items()):
            yield ("," if i else "") + "\n" + " " * (indent + 4) + json.dumps(k, ensure_ascii=False) + ": "
            yield from _debug_tokens(v, indent + 4)
        yield "\n" + " " * indent + "}"
    elif isinstance(value, list):
        if not value:
            yield "[]"
            return
        yield "["
        for i, v in enumerate(value):
            if i:
                yield ", "
            yield from _debug_tokens(v, indent)
        yield "]"
    elif isinstance(value, str):
        yield json.dumps(value, ensure_ascii=False)
    elif value is None:
        yield "null"
    elif isinstance(value, bool):
        yield "true" if value else "false"
    else:
        yield _number_text(value)


def debug_string(value: Any) -> str:
    """TF Serving's `JsonValueToDebugString`: the value pretty-printed, cut after the token that
    reaches 256 bytes."""
    out, size = [], 0
    for token in _debug_tokens(value, 0):
        if size >= _DEBUG_LIMIT:
            break
        out.append(token)
        size += len(token.encode("utf-8"))
    return "".join(out)


def _format_error(doc: Any, message: str) -> ServingError:
    return invalid(f"JSON Value: {debug_string(doc)} {message}")


def _status_text(err: ServingError) -> str:
    """absl::Status::ToString() of an error: "INVALID_ARGUMENT: message"."""
    return f"{err.code.name}: {err.message}"


def _type_error(value: Any, info: TensorInfo) -> Exception:
    return invalid(f"JSON Value: {debug_string(value)} Type: {json_type(value)} "
                   f"is not of expected type: {info.tf_name}")


def _is_b64(value: Any) -> bool:
    """json_tensor.cc `IsValBase64Object`: an object whose only key is "b64", holding a string."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _decode_b64(obj: Any) -> bytes:
    if not _is_b64(obj):
        raise invalid(f"JSON Value: {debug_string(obj)} not formatted correctly for base64 data")
    text = obj["b64"]
    try:  # absl::Base64Unescape: the standard alphabet, padding optional
        return base64.b64decode(text + "=" * (-len(text) % 4) if "=" not in text else text, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise invalid("Unable to base64 decode") from None


_INT_RANGES = {"int32": (-2**31, 2**31 - 1), "int16": (-2**31, 2**31 - 1), "int8": (-2**31, 2**31 - 1),
               "uint8": (-2**31, 2**31 - 1), "int64": (-2**63, 2**63 - 1), "uint32": (0, 2**32 - 1),
               "uint64": (0, 2**64 - 1)}
# dtypes json_tensor.cc's AddValueToTensor converts; others are UNIMPLEMENTED there
_JSON_DTYPES = {"float32", "float64", "int32", "int16", "int8", "uint8", "int64", "bool", "uint32", "uint64",
                "object"}


def _leaf(value: Any, info: TensorInfo) -> Any:
    """json_tensor.cc `AddValueToTensor`: one JSON scalar as a value of the tensor's dtype."""
    name = info.dtype.name
    if info.is_string:
        if isinstance(value, dict):
            return _decode_b64(value)
        if not isinstance(value, str):
            raise _type_error(value, info)
        return value.encode("utf-8")
    if isinstance(value, dict):
        raise _type_error(value, info)
    if name not in _JSON_DTYPES:
        raise ServingError(Code.UNIMPLEMENTED,
                           f"Conversion of JSON Value: {debug_string(value)} to type: {info.tf_name}")
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if info.dtype.kind == "f":
        if not is_number:
            raise _type_error(value, info)
        return value
    if info.dtype.kind == "b":
        if not isinstance(value, bool):
            raise _type_error(value, info)
        return value
    low, high = _INT_RANGES[name]
    if not (is_number and isinstance(value, int) and low <= value <= high):
        raise _type_error(value, info)
    return value


def _dense_shape(value: Any) -> list[int]:
    """json_tensor.cc `GetDenseTensorShape`: the shape along the first elements."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _fill(value: Any, level: int, shape: list[int], info: TensorInfo, out: list) -> None:
    """json_tensor.cc `FillTensorProto`: appends the leaves of `value`, checking it is dense."""
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise invalid(f"JSON Value: {debug_string(value)} found at incorrect level: {level + 1} "
                          f"in the JSON DOM. Expected at level: {rank}")
        out.append(_leaf(value, info))
        return
    if level >= rank:
        raise invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise invalid(f"Encountered list at unexpected size: {len(value)} at level: {level} "
                      f"expected size: {shape[level]}")
    for v in value:
        _fill(v, level + 1, shape, info, out)


def _tensor(value: Any, info: TensorInfo) -> tuple[list[int], list]:
    shape = _dense_shape(value)
    values: list = []
    _fill(value, 0, shape, info, values)
    return shape, values


def _as_array(shape: list[int], values: list, info: TensorInfo) -> np.ndarray:
    if info.is_string:
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out.reshape(shape)
    with np.errstate(over="ignore"):  # a double beyond float32's range is inf, as GetFloat() gives
        return np.array(values, dtype=np.float64 if info.dtype.kind == "f" else None).astype(
            info.dtype).reshape(shape)


def _fast_array(value: Any, info: TensorInfo, may_hold_bools: bool) -> np.ndarray | None:
    """numpy's conversion of a dense numeric value, when it gives what TF Serving's walk would
    (else None: the walk runs and raises its precise error)."""
    if info.is_string or info.dtype.name not in _JSON_DTYPES:
        return None
    try:
        arr = np.asarray(value)
    except (ValueError, OverflowError):  # ragged, or integers beyond 64 bits
        return None
    kind, target = arr.dtype.kind, info.dtype.kind
    if kind not in "fiub" or (target == "b") != (kind == "b") or (target in "iu" and kind not in "iu"):
        return None
    if may_hold_bools and target != "b":
        return None  # numpy turns a stray `true` into 1; the walk tells them apart
    if target in "iu" and arr.size:
        low, high = _INT_RANGES[info.dtype.name]
        if arr.min() < low or arr.max() > high:
            return None
    with np.errstate(over="ignore"):
        return arr.astype(info.dtype, copy=False)


def to_array(value: Any, info: TensorInfo, may_hold_bools: bool = True) -> np.ndarray:
    """A JSON value (nested lists, numbers, strings, `{"b64": ...}`) as a numpy array of
    `info.dtype`, as json_tensor.cc's FillTensorProto converts it (same errors).

    `may_hold_bools=False` (the body has no `true`/`false` token) lets numpy convert numeric
    tensors at once; otherwise each value's JSON type is checked.
    """
    arr = _fast_array(value, info, may_hold_bools)
    if arr is not None:
        return arr
    shape, values = _tensor(value, info)
    return _as_array(shape, values, info)


def _check_shape(name: str, arr: np.ndarray, info: TensorInfo) -> None:
    if info.shape is None:
        return
    if arr.ndim != len(info.shape) or any(d is not None and d != a for d, a in zip(info.shape, arr.shape, strict=False)):
        want = [-1 if d is None else d for d in info.shape]
        raise invalid(f"Input '{name}' has shape {list(arr.shape)}, which does not match the signature's shape {want}")


def signature_name(doc: Any) -> str:
    """The request's `signature_name` ("" when absent), as json_tensor.cc's FillSignature reads it.

    Raises:
      ServingError: the body is not an object, or the name is not a string (TF Serving's texts).
    """
    if not isinstance(doc, dict):
        raise _format_error(doc, "Is not object")
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise _format_error(doc, "not formatted correctly. 'signature_name' key must be a string value.")
    return name


def parse_predict_request(body: Any, inputs: dict[str, TensorInfo],
                          may_hold_bools: bool = True) -> tuple[dict[str, np.ndarray], str]:
    """Turns a parsed `:predict` body into named numpy inputs; returns (inputs, "row" | "columnar").

    Follows json_tensor.cc's FillPredictRequestFromJson, with its error texts. Pass
    `may_hold_bools=False` when the raw body has no `true`/`false` token (a fast path).
    """
    try:
        return _parse_predict_request(body, inputs, may_hold_bools)
    except RecursionError:  # tensors nested deeper than Python's stack
        raise invalid("JSON Value: nested too deeply to be a tensor") from None


def _parse_predict_request(body: Any, inputs: dict[str, TensorInfo],
                           may_hold_bools: bool) -> tuple[dict[str, np.ndarray], str]:
    signature_name(body)
    if not inputs:
        raise invalid("Failed to get input map for signature: DEFAULT")
    if "instances" in body:
        if "inputs" in body:
            raise _format_error(body, "Not formatted correctly expecting only one of 'inputs' or "
                                      "'instances' keys to exist ")
        if not isinstance(body["instances"], list):
            raise _format_error(body, "Expecting 'instances' to be an list/array")
        if not body["instances"]:
            raise _format_error(body, "No values in 'instances' array")
        arrays, fmt = _parse_rows(body["instances"], inputs, may_hold_bools), "row"
    elif "inputs" in body:
        arrays, fmt = _parse_columns(body["inputs"], inputs, may_hold_bools), "columnar"
    else:
        raise invalid("Missing 'inputs' or 'instances' key")
    for name, arr in arrays.items():
        _check_shape(name, arr, inputs[name])
    return arrays, fmt


def _is_element_object(value: Any) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def _parse_rows(instances: list, inputs: dict[str, TensorInfo], bools: bool) -> dict[str, np.ndarray]:
    """json_tensor.cc `FillTensorMapFromInstancesList`."""
    if not isinstance(instances[0], dict) and len(inputs) > 1:
        raise invalid("instances is a plain list, but expecting list of objects as multiple input tensors "
                      "required as per tensorinfo_map")
    if not _is_element_object(instances[0]):
        if not any(isinstance(i, dict) for i in instances):
            (name, info), = inputs.items()
            arr = _fast_array(instances, info, bools)
            if arr is not None:
                return {name: arr}
        return _walk_rows(instances, inputs, named=False)
    if all(_is_element_object(i) and i.keys() == inputs.keys() for i in instances):
        out = {}
        for name, info in inputs.items():
            arr = _fast_array([i[name] for i in instances], info, bools)
            if arr is None:
                return _walk_rows(instances, inputs, named=True)
            out[name] = arr
        return out
    return _walk_rows(instances, inputs, named=True)


def _walk_rows(instances: list, inputs: dict[str, TensorInfo], named: bool) -> dict[str, np.ndarray]:
    sizes: dict[str, int] = {}
    shapes: dict[str, list[int]] = {}
    values: dict[str, list] = {}
    names = sorted(inputs)

    def add(item: Any, name: str) -> None:  # json_tensor.cc AddInstanceItem
        if name not in inputs:
            raise invalid(f"JSON object: does not have named input: {name}")
        shape, vals = _tensor(item, inputs[name])
        if name not in sizes:
            sizes[name], shapes[name] = len(vals), shape
        elif sizes[name] != len(vals):
            raise invalid(f"Expecting tensor size: {sizes[name]} but got: {len(vals)}")
        elif shapes[name] != shape:
            raise invalid(f"Expecting shape {_shape_text(shapes[name])} but got: {_shape_text(shape)}")
        values.setdefault(name, []).extend(vals)

    for i, elem in enumerate(instances):
        if named:
            if not _is_element_object(elem):
                raise invalid(f"Expecting object but got list at item {i} of input list")
            for name, item in elem.items():
                try:
                    add(item, name)
                except ServingError as err:
                    raise invalid(f"Failed to process element: {i} key: {name} of 'instances' list. "
                                  f"Error: {_status_text(err)}") from None
            if set(elem) != set(inputs):
                raise invalid(f"Failed to process element: {i} of 'instances' list. JSON object: "
                              f"{debug_string(elem)} keys must be equal to: {','.join(names)}")
        else:
            if _is_element_object(elem):
                raise invalid(f"Expecting value/list but got object at item {i} of input list")
            try:
                add(elem, next(iter(inputs)))
            except ServingError as err:
                raise invalid(f"Failed to process element: {i} of 'instances' list. "
                              f"Error: {_status_text(err)}") from None
    return {name: _as_array([len(instances), *shapes[name]], values[name], inputs[name]) for name in values}


def _shape_text(shape: list[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _parse_columns(value: Any, inputs: dict[str, TensorInfo], bools: bool) -> dict[str, np.ndarray]:
    """json_tensor.cc `FillTensorMapFromInputsMap` (keys the signature lacks are ignored, as there)."""
    if not isinstance(value, dict) or _is_b64(value):
        if len(inputs) > 1:
            raise invalid("inputs is a plain value/list, but expecting an object as multiple input tensors "
                          "required as per tensorinfo_map")
        (name, info), = inputs.items()
        return {name: to_array(value, info, bools)}
    out = {}
    for name, info in inputs.items():
        if name not in value:
            raise invalid(f"Missing named input: {name} in 'inputs' object.")
        out[name] = to_array(value[name], info, bools)
    return out


# --- :classify / :regress bodies ---------------------------------------------------------
def _feature_kind_error(name: str, feature) -> ServingError:
    kind = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64"}.get(feature.WhichOneof("kind"),
                                                                                    "UNKNOWN")
    return invalid(f"Unexpected element type in feature: {name} expecting type: {kind}")


def _add_feature_value(value: Any, name: str, feature) -> None:
    """json_tensor.cc `AddValueToFeature`."""
    kind = feature.WhichOneof("kind")

    def need(want: str) -> None:
        if kind not in (None, want):
            raise _feature_kind_error(name, feature)

    if value is None or isinstance(value, list) or (isinstance(value, dict) and not _is_b64(value)):
        raise invalid(f"Feature: {name} has element with unexpected JSON type: {json_type(value)}")
    if isinstance(value, bool):
        need("int64_list")
        feature.int64_list.value.append(int(value))
    elif isinstance(value, dict):
        need("bytes_list")
        feature.bytes_list.value.append(_decode_b64(value))
    elif isinstance(value, str):
        need("bytes_list")
        feature.bytes_list.value.append(value.encode("utf-8"))
    elif isinstance(value, float):
        need("float_list")
        feature.float_list.value.append(value)
    else:
        need("int64_list")
        if value >= 2**63:
            raise invalid(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
        feature.int64_list.value.append(value)


def _example(value: Any, example) -> None:
    """json_tensor.cc `MakeExampleFromJsonObject`."""
    if not isinstance(value, dict):
        raise invalid(f"Example must be JSON object but got JSON {json_type(value)}")
    for name, content in value.items():
        feature = example.features.feature[name]
        for v in content if isinstance(content, list) else [content]:
            _add_feature_value(v, name, feature)


def parse_classify_regress_request(doc: Any):
    """A `:classify` / `:regress` body as (signature name, `tensorflow.serving.Input` proto), as
    json_tensor.cc's FillClassifyRegressRequestFromJson reads it (same errors)."""
    from tensorflow_serving.apis import input_pb2

    name = signature_name(doc)
    request_input = input_pb2.Input()
    has_context = "context" in doc
    if has_context:
        _example(doc["context"], request_input.example_list_with_context.context)
    if "examples" not in doc:
        raise _format_error(doc, "When method is classify, key 'examples' is expected and was not found")
    examples = doc["examples"]
    if not isinstance(examples, list):
        raise _format_error(doc, "Expecting 'examples' value to be an list/array")
    if not examples:
        raise _format_error(doc, "'examples' value is an empty array")
    for value in examples:
        target = (request_input.example_list_with_context.examples if has_context
                  else request_input.example_list.examples)
        _example(value, target.add())
    return name, request_input


# --- numpy -> JSON ------------------------------------------------------------------------
_NONFINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _array_text(arr: np.ndarray) -> str:
    """JSON text of a float array holding NaN/Infinity (the rare, slow path; used by clients)."""
    if arr.ndim == 0:
        text = str(arr.item() if arr.dtype.kind != "f" else arr.dtype.type(arr))
        return _NONFINITE.get(text, text)
    return "[" + ",".join(_array_text(a) for a in arr) + "]"


def decimal_text(value: float, dtype: np.dtype) -> str:
    """json_tensor.cc `WriteDecimal`: six significant digits ("%g"), full precision when that
    does not round-trip, ".0" added to whole numbers; NaN, Infinity, -Infinity as bare tokens."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    text = format(value, "g")
    if dtype.type(float(text)) != dtype.type(value):
        text = format(value, ".9g" if dtype == np.float32 else ".17g")
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def _float_text(arr: np.ndarray) -> bytes:
    """JSON text of a float32/float64 array as TF Serving writes it (`WriteDecimal` per value)."""
    if arr.size and np.isfinite(arr).all() and np.abs(arr).max() < 1e6 and np.array_equal(arr, np.trunc(arr)) \
            and not np.signbit(arr[arr == 0]).any():
        # whole numbers below 1e6 ("%g" writes them as digits, then ".0"): orjson writes exactly
        # that ("217.0"), fast; the path of upscaled images' 0-255 pixels
        if arr.ndim == 0:
            return b"%d.0" % int(arr)
        return orjson.dumps(arr, option=orjson.OPT_SERIALIZE_NUMPY)
    flat = [decimal_text(v, arr.dtype) for v in arr.reshape(-1).tolist()]
    return _nest(flat, arr.shape).encode()


def _nest(flat: list[str], shape: tuple[int, ...]) -> str:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return "[" + ",".join(flat) + "]"
    step = len(flat) // shape[0] if shape[0] else 0
    return "[" + ",".join(_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])) + "]"


_WRITABLE = set("biuf") | {"O", "S", "U"}


def _jsonable(arr: Any, alias: str) -> Any:
    arr = np.asarray(arr)
    if arr.dtype == object or arr.dtype.kind in "SU":
        as_b64 = alias.endswith("_bytes")

        def conv(v):
            v = v if isinstance(v, bytes) else str(v).encode()
            if as_b64:
                return {"b64": base64.b64encode(v).decode("ascii")}
            return v.decode("utf-8", errors="replace")

        if arr.ndim == 0:
            return conv(arr.item())
        return np.vectorize(conv, otypes=[object])(arr).tolist() if arr.size else np.empty(arr.shape).tolist()
    if arr.dtype in (np.float32, np.float64):
        return orjson.Fragment(_float_text(arr))  # written as is, never parsed or copied again
    if arr.dtype.kind not in "biu" or arr.dtype == np.uint16:
        raise invalid(f"Failed to write JSON value for tensor type: {_tf_name(arr.dtype)}")
    return arr[()] if arr.ndim == 0 else arr


def _tf_name(dtype: np.dtype) -> str:
    return {"float16": "half", "complex64": "complex64", "complex128": "complex128", "uint16": "uint16"}.get(
        dtype.name, TensorInfo(dtype, None).tf_name)


def format_predict_response(outputs: dict[str, np.ndarray], fmt: str) -> bytes:
    """JSON body for `:predict`: `{"predictions": ...}` (row) or `{"outputs": ...}` (columnar),
    as json_tensor.cc's MakeJsonFromTensors writes it (same errors)."""
    if not outputs:
        raise invalid("Cannot convert empty tensor map to JSON")
    outputs = {k: np.asarray(v) for k, v in sorted(outputs.items())}
    if fmt == "row":
        batch = -1
        for name, arr in outputs.items():
            if arr.ndim == 0:
                raise invalid(f"Tensor name: {name} has no shape information ")
            if batch >= 0 and arr.shape[0] != batch:
                raise invalid(f"Tensor name: {name} has inconsistent batch size: {arr.shape[0]} expecting: {batch}")
            batch = arr.shape[0]
        if len(outputs) == 1:
            (name, arr), = outputs.items()
            obj: Any = {"predictions": _jsonable(arr, name)}
        else:
            obj = {"predictions": [{k: _jsonable(a[i], k) for k, a in outputs.items()} for i in range(batch)]}
    elif fmt == "columnar":
        if len(outputs) == 1:
            (name, arr), = outputs.items()
            obj = {"outputs": _jsonable(arr, name)}
        else:
            obj = {"outputs": {k: _jsonable(a, k) for k, a in outputs.items()}}
    else:
        raise invalid("Invalid request format")
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})
