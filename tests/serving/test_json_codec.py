"""The REST JSON tensor codec against the rules of TF Serving's json_tensor.cc."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sr_tf.serving.codec import TensorInfo, format_predict_response, loads, parse_predict_request
from sr_tf.serving.errors import ServingError

F32 = TensorInfo(np.dtype(np.float32), (None, 2))
I32 = TensorInfo(np.dtype(np.int32), None)
STR = TensorInfo(np.dtype(object), (None,))


def test_integer_inputs_reject_floats_but_take_ints():
    arrays, fmt = parse_predict_request(loads(b'{"inputs": [1, 2]}'), {"k": I32})
    assert fmt == "columnar" and arrays["k"].dtype == np.int32 and arrays["k"].tolist() == [1, 2]
    with pytest.raises(ServingError, match="JSON Value: 1.0 Type: Number is not of expected type: int32"):
        parse_predict_request(loads(b'{"inputs": [1.0]}'), {"k": I32})


def test_named_inputs_in_row_and_columnar_formats():
    inputs = {"a": F32, "b": STR}
    rows = loads(b'{"instances": [{"a": [1, 2], "b": {"b64": "aGk="}}, {"a": [3, 4], "b": "s"}]}')
    arrays, fmt = parse_predict_request(rows, inputs)
    assert fmt == "row"
    np.testing.assert_array_equal(arrays["a"], [[1, 2], [3, 4]])
    assert arrays["b"].tolist() == [b"hi", b"s"]
    cols = loads(b'{"inputs": {"a": [[1, 2]], "b": [{"b64": "aGk="}]}}')
    arrays, fmt = parse_predict_request(cols, inputs)
    assert fmt == "columnar" and arrays["b"].tolist() == [b"hi"]
    with pytest.raises(ServingError, match="Failed to process element: 1"):
        parse_predict_request(loads(b'{"instances": [{"a": [1, 2], "b": "x"}, {"a": [1, 2]}]}'), inputs)


def test_nan_and_infinity_tokens_in_and_out():
    arrays, _ = parse_predict_request(loads(b'{"instances": [[NaN, Infinity], [-Infinity, 1]]}'), {"x": F32})
    x = arrays["x"]
    assert np.isnan(x[0, 0]) and x[0, 1] == np.inf and x[1, 0] == -np.inf
    text = format_predict_response({"y": x}, "row")
    assert text == b'{"predictions":[[NaN,Infinity],[-Infinity,1.0]]}'


def test_output_formats_and_bytes_alias():
    outputs = {"score": np.array([0.5, 2.0], np.float32), "image_bytes": np.array([b"\x00\x01", b"z"], dtype=object),
               "label": np.array([b"cat", b"dog"], dtype=object)}
    row = json.loads(format_predict_response(outputs, "row"))
    assert row == {"predictions": [
        {"score": 0.5, "image_bytes": {"b64": "AAE="}, "label": "cat"},
        {"score": 2.0, "image_bytes": {"b64": "eg=="}, "label": "dog"},
    ]}
    col = json.loads(format_predict_response(outputs, "columnar"))
    assert col["outputs"]["score"] == [0.5, 2.0] and col["outputs"]["label"] == ["cat", "dog"]
    single = format_predict_response({"y": np.array([[1.5, 2]], np.float32)}, "columnar")
    assert single == b'{"outputs":[[1.5,2.0]]}'  # one output: its name is left out


def test_whole_number_floats_are_written_as_decimals():
    # TF Serving's WriteDecimal (json_tensor.cc) appends ".0": clients tell float outputs from ints
    pixels = np.array([[[0, 255, 17], [3, 128, 254]]], np.float32)  # an upscaled image's values
    assert format_predict_response({"y": pixels}, "row") == b'{"predictions":[[[0.0,255.0,17.0],[3.0,128.0,254.0]]]}'
    for value in (0.5, -1e-7, 2.0**53, 1e300):  # not whole, or not exactly a float64 integer
        arr = np.array([1.0, value], np.float64)
        assert json.loads(format_predict_response({"y": arr}, "columnar"))["outputs"] == arr.tolist()
        assert b"1.0" in format_predict_response({"y": arr}, "columnar")


@pytest.mark.parametrize("body,message", [
    (b'{"inputs": [1], "instances": [1]}', "only one of"),
    (b'{"instances": []}', "No values in 'instances' array"),
    (b'{"instances": [[1, 2], [1, true]]}', "Type: True is not of expected type: float"),
    (b'{"instances": [{"b64": "***"}]}', "base64"),
])
def test_bad_requests(body, message):
    info = {"x": STR} if b"b64" in body else {"x": F32}
    with pytest.raises(ServingError, match=message) as err:
        parse_predict_request(loads(body), info)
    assert err.value.code.http_status == 400
