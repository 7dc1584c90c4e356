"""TF Serving's own tests of its REST JSON codec, ported: tensorflow_serving/util/json_tensor_test.cc.

Each test names the upstream TEST (and its line in json_tensor_test.cc); the expected answers are
upstream's, with the line of json_tensor.cc that produces them. TF Serving's tests fill a
PredictRequest's TensorProtos; ours compare what `sr_tf.serving.codec` parses, turned into a
TensorProto the way a PredictResponse is filled (typed fields, `Tensor::AsProtoField`), with the
upstream expected proto. Cases left out are listed in serving/README.md ("TF Serving's tests").
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from google.protobuf import text_format
from tensorflow.core.framework import tensor_pb2

from sr_tf.serving.codec import (
    TensorInfo,
    format_predict_response,
    loads,
    parse_classify_regress_request,
    parse_predict_request,
)
from sr_tf.serving.errors import ServingError

DTYPES = {"DT_INT32": np.int32, "DT_FLOAT": np.float32, "DT_DOUBLE": np.float64, "DT_STRING": object,
          "DT_INT64": np.int64, "DT_BOOL": np.bool_}


def infomap(**dtypes: str) -> dict[str, TensorInfo]:
    """A signature's TensorInfoMap with dtypes only (no shapes), as upstream's `infomap`."""
    return {name: TensorInfo(np.dtype(DTYPES[d]), None) for name, d in dtypes.items()}


def fill(body: str | bytes, info: dict[str, TensorInfo]):
    """FillPredictRequestFromJson: the parsed tensors and the format ("row" | "columnar")."""
    raw = body.encode() if isinstance(body, str) else body
    return parse_predict_request(loads(raw), info, may_hold_bools=b"true" in raw or b"false" in raw)


def error(body: str | bytes, info: dict[str, TensorInfo]) -> str:
    with pytest.raises(ServingError) as err:
        fill(body, info)
    assert err.value.code.name == "INVALID_ARGUMENT", err.value.code
    return err.value.message


def assert_proto(arr: np.ndarray, expected: str) -> None:
    """EqualsProto: our tensor, as TF Serving fills a TensorProto, against upstream's text."""
    from sr_tf.serving.grpc_service import tensor_proto

    want = text_format.Parse(expected, tensor_pb2.TensorProto())
    assert text_format.MessageToString(tensor_proto(arr)) == text_format.MessageToString(want)


def tensors(text: str) -> dict[str, np.ndarray]:
    """Upstream's TensorMap fixtures (text protos) as numpy arrays."""
    import tensorflow as tf

    out = {}
    for name, proto_text in json.loads(text).items():
        out[name] = tf.make_ndarray(text_format.Parse(proto_text, tensor_pb2.TensorProto()))
    return out


def compare_json(actual: bytes, expected: str, as_strings: bool = False) -> None:
    """CompareJson / CompareJsonAllValuesAsStrings (json_tensor_test.cc:796, 822)."""
    if as_strings:
        def parse(text):
            return json.loads(text, parse_float=str, parse_int=str, parse_constant=str)
    else:
        parse = json.loads
    assert parse(actual) == parse(expected), actual


INT6 = "dtype: DT_INT32 tensor_shape { dim { size: 3 } dim { size: 2 } } " + " ".join(
    f"int_val: {v}" for v in (1, 2, 3, 4, 5, 6))


# --- FillPredictRequestFromJson ------------------------------------------------------------
def test_SingleUnnamedTensor():  # json_tensor_test.cc:57
    tmap, fmt = fill('{"instances": [[1,2],[3,4],[5,6]]}', infomap(default="DT_INT32"))
    assert fmt == "row" and len(tmap) == 1
    assert_proto(tmap["default"], INT6)


def test_MixedInputForFloatTensor():  # json_tensor_test.cc:121
    tmap, fmt = fill('{"instances": [1, 2.0, 3, 4, 5.003, 0.007, 0.0]}', infomap(default="DT_FLOAT"))
    assert fmt == "row"
    assert_proto(tmap["default"], "dtype: DT_FLOAT tensor_shape { dim { size: 7 } } float_val: 1 float_val: 2.0 "
                                  "float_val: 3 float_val: 4 float_val: 5.003 float_val: 0.007 float_val: 0.0")


def test_MixedInputForDoubleTensor():  # json_tensor_test.cc:149
    tmap, _ = fill('{"instances": [1.0, 2, 3, 4, 0.662, 0, 0.0]}', infomap(default="DT_DOUBLE"))
    assert_proto(tmap["default"], "dtype: DT_DOUBLE tensor_shape { dim { size: 7 } } double_val: 1.0 double_val: 2 "
                                  "double_val: 3 double_val: 4 double_val: 0.662 double_val: 0 double_val: 0.0")


@pytest.mark.parametrize("number", ["1435774380", "1435774380.0"])
def test_FloatTensorWithPrecisionLoss(number):  # json_tensor_test.cc:183
    tmap, _ = fill(f'{{"instances": [{number}]}}', infomap(default="DT_FLOAT"))
    assert_proto(tmap["default"], "dtype: DT_FLOAT tensor_shape { dim { size: 1 } } float_val: 1435774380")


@pytest.mark.parametrize("sign", ["", "-"])
def test_FloatTensorThatExceedsMaxReturnsInf(sign):  # json_tensor_test.cc:224 (GetFloat() of a double)
    tmap, _ = fill(f'{{"instances": [{sign}{float(np.finfo(np.float64).max)!r}]}}', infomap(default="DT_FLOAT"))
    assert_proto(tmap["default"], f"dtype: DT_FLOAT tensor_shape {{ dim {{ size: 1 }} }} float_val: {sign}inf")


@pytest.mark.parametrize("sign", ["", "-"])
def test_FloatTensorThatExceedsMinReturnsZero(sign):  # json_tensor_test.cc:261
    tmap, _ = fill(f'{{"instances": [{sign}{float(np.finfo(np.float64).tiny)!r}]}}', infomap(default="DT_FLOAT"))
    assert_proto(tmap["default"], f"dtype: DT_FLOAT tensor_shape {{ dim {{ size: 1 }} }} float_val: {sign}0")


def test_SingleUnnamedTensorWithSignature():  # json_tensor_test.cc:298
    from sr_tf.serving.codec import signature_name

    body = loads(b'{"signature_name": "predict_images", "instances": [[1,2]]}')
    assert signature_name(body) == "predict_images"
    tmap, fmt = parse_predict_request(body, infomap(default="DT_INT32"))
    assert fmt == "row"
    assert_proto(tmap["default"], "dtype: DT_INT32 tensor_shape { dim { size: 1 } dim { size: 2 } } "
                                  "int_val: 1 int_val: 2")


def test_TensorFromNonNullTerminatedBuffer():  # json_tensor_test.cc:326
    # rapidjson's kParseStopWhenDoneFlag (json_tensor.cc:482): what follows the document is not read
    tmap, fmt = fill(b'{"instances": [[1,2],[3,4],[5,6]]}X', infomap(default="DT_INT32"))
    assert fmt == "row"
    assert_proto(tmap["default"], INT6)


def test_SingleUnnamedTensorBase64Scalars():  # json_tensor_test.cc:357
    tmap, _ = fill('{"instances": [ { "b64" : "aGVsbG8=" }, { "b64": "d29ybGQ=" } ]}', infomap(default="DT_STRING"))
    assert_proto(tmap["default"], 'dtype: DT_STRING tensor_shape { dim { size: 2 } } '
                                  'string_val: "hello" string_val: "world"')


def test_SingleUnnamedTensorBase64Lists():  # json_tensor_test.cc:382
    tmap, _ = fill('{"instances": [ [{ "b64" : "aGVsbG8=" }], [{ "b64": "d29ybGQ=" }] ]}',
                   infomap(default="DT_STRING"))
    assert_proto(tmap["default"], 'dtype: DT_STRING tensor_shape { dim { size: 2 } dim { size: 1 } } '
                                  'string_val: "hello" string_val: "world"')


def test_SingleNamedTensorBase64():  # json_tensor_test.cc:408
    tmap, _ = fill('{"instances": [{"default": [ [{ "b64" : "aGVsbG8=" }], [{ "b64": "d29ybGQ=" }] ]}]}',
                   infomap(default="DT_STRING"))
    assert_proto(tmap["default"], 'dtype: DT_STRING tensor_shape { dim { size: 1 } dim { size: 2 } dim { size: 1 } } '
                                  'string_val: "hello" string_val: "world"')


def test_MultipleNamedTensor():  # json_tensor_test.cc:439
    tmap, fmt = fill('''{"instances": [
        {"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"], "float_tensor": [1.0, NaN],
         "dbl_tensor": [NaN]},
        {"int_tensor": [[7,8],[9,0],[1,2]], "str_tensor": ["baz", "bat"], "float_tensor": [2.0, Infinity],
         "dbl_tensor": [2.0]}]}''',
                     infomap(int_tensor="DT_INT32", str_tensor="DT_STRING", float_tensor="DT_FLOAT",
                             dbl_tensor="DT_DOUBLE"))
    assert fmt == "row" and len(tmap) == 4
    assert_proto(tmap["int_tensor"], "dtype: DT_INT32 tensor_shape { dim { size: 2 } dim { size: 3 } dim { size: 2 } } "
                 + " ".join(f"int_val: {v}" for v in (1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2)))
    assert_proto(tmap["str_tensor"], 'dtype: DT_STRING tensor_shape { dim { size: 2 } dim { size: 2 } } '
                                     'string_val: "foo" string_val: "bar" string_val: "baz" string_val: "bat"')
    assert_proto(tmap["float_tensor"], "dtype: DT_FLOAT tensor_shape { dim { size: 2 } dim { size: 2 } } "
                                       "float_val: 1.0 float_val: NaN float_val: 2.0 float_val: Infinity")
    assert_proto(tmap["dbl_tensor"], "dtype: DT_DOUBLE tensor_shape { dim { size: 2 } dim { size: 1 } } "
                                     "double_val: NaN double_val: 2.0")


@pytest.mark.parametrize("body", ['{"inputs": {"int_tensor": [[[1,2],[3,4],[5,6]]]}}', '{"inputs": [[[1,2],[3,4],[5,6]]]}'])
def test_SingleUnnamedTensorColumnarFormat(body):  # json_tensor_test.cc:529 (named, then unnamed)
    tmap, fmt = fill(body, infomap(int_tensor="DT_INT32"))
    assert fmt == "columnar"
    assert_proto(tmap["int_tensor"], INT6.replace("dim { size: 3 }", "dim { size: 1 } dim { size: 3 }"))


def test_MultipleNamedTensorColumnarFormat():  # json_tensor_test.cc:589
    tmap, fmt = fill('{"inputs": {"int_tensor": [[[1,2],[3,4],[5,6]]], "str_tensor": ["foo", "bar"], '
                     '"bin_tensor": { "b64" : "aGVsbG8=" }}}',
                     infomap(int_tensor="DT_INT32", str_tensor="DT_STRING", bin_tensor="DT_STRING"))
    assert fmt == "columnar" and len(tmap) == 3
    assert_proto(tmap["int_tensor"], INT6.replace("dim { size: 3 }", "dim { size: 1 } dim { size: 3 }"))
    assert_proto(tmap["str_tensor"], 'dtype: DT_STRING tensor_shape { dim { size: 2 } } '
                                     'string_val: "foo" string_val: "bar"')
    assert_proto(tmap["bin_tensor"], 'dtype: DT_STRING tensor_shape {} string_val: "hello"')


@pytest.mark.parametrize("body,message", [  # json_tensor_test.cc:642 SingleUnnamedTensorErrors
    ("", "document is empty"),  # json_tensor.cc:475
    ('{"signature_name": 5, "instances": [[1,2],[3,4],[5,6,7]]}', "must be a string value"),  # :283
    ('{"instances": [[1,2],[3,4],[5,6,7]], "inputs": [[1,2],[3,4],[5,6,7]]}', "Not formatted correctly"),  # :679
    ('{"instances": [[1,2],[3,4],[5,6,7]]}', "Expecting tensor size"),  # :463
    ('{"instances": [[1,2],[3,4],[[5,6]]]}', "Expecting shape"),  # :467
    ('{"instances": [1, [1]]}', "Expecting shape"),  # :467
    ('{"instances": [[1,2],["a", "b"]]}', "not of expected type"),  # :266
])
def test_SingleUnnamedTensorErrors(body, message):
    assert message in error(body, infomap(default="DT_INT32"))


@pytest.mark.parametrize("body,message", [  # json_tensor_test.cc:705 MultipleNamedTensorErrors
    ('{"instances": [{"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"]}, '
     '{"int_tensor": [[[7,8],[9,0],[1,2]]], "str_tensor": ["baz", "bat"]}]}', "Expecting shape"),  # :467
    ('{"instances": [{"int_tensor": [[1,2],[3,4],[5,6],[7,8]], "str_tensor": ["foo", "bar"]}, '
     '{"int_tensor": [[7,8],[9,0],[1,2]], "str_tensor": ["baz", "bat"]}]}', "Expecting tensor size"),  # :463
    ('{"instances": [{"int_tensor": [[1,2],[3,4],[5,6]], "str_tensor": ["foo", "bar"]}, [1, 20, 30], '
     '{"int_tensor": [[[7,8],[9,0],[1,2]]], "str_tensor": ["baz", "bat"]}]}', "Expecting object but got list"),  # :553
])
def test_MultipleNamedTensorErrors(body, message):
    assert message in error(body, infomap(int_tensor="DT_INT32", str_tensor="DT_STRING"))


def test_MultipleNamedTensorErrors_value_list_then_object():  # json_tensor_test.cc:777
    message = error('{"instances": [["baz", "bar"], {"str_tensor": ["baz", "bat"]}]}', infomap(str_tensor="DT_STRING"))
    assert "Expecting value/list but got object" in message  # json_tensor.cc:577


def test_full_error_texts_reach_clients_unchanged():
    # The texts clients see, whole (json_tensor.cc:570 wraps AddInstanceItem's status, :463)
    assert error('{"instances": [[1,2],[3,4],[5,6,7]]}', infomap(default="DT_INT32")) == (
        "Failed to process element: 2 of 'instances' list. Error: INVALID_ARGUMENT: Expecting tensor size: 2 but got: 3")
    assert error('{"instances": [[1,2],["a", "b"]]}', infomap(default="DT_INT32")) == (
        "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
        'JSON Value: "a" Type: String is not of expected type: int32')
    assert error("[1]", infomap(default="DT_INT32")) == "JSON Value: [1] Is not object"  # :499
    assert error('{"instances": []}', infomap(default="DT_INT32")) == (
        'JSON Value: {\n    "instances": []\n} No values in \'instances\' array')  # :688


# --- MakeJsonFromTensors ---------------------------------------------------------------
INT_2x3x2 = ("dtype: DT_INT32 tensor_shape { dim { size: 2 } dim { size: 3 } dim { size: 2 } } "
             + " ".join(f"int_val: {v}" for v in (1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2)))


def test_FromJsonSingleTensor():  # json_tensor_test.cc:832
    t = tensors(json.dumps({"int_tensor": INT_2x3x2}))
    compare_json(format_predict_response(t, "row"), '{"predictions": [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]]}')
    compare_json(format_predict_response(t, "columnar"), '{"outputs": [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]]}')


def test_FromJsonSingleScalarTensor():  # json_tensor_test.cc:871
    t = {"int_tensor": np.array([1, 2, 3, 4, 5], np.int32)}
    compare_json(format_predict_response(t, "row"), '{ "predictions": [1, 2, 3, 4, 5] }')
    compare_json(format_predict_response(t, "columnar"), '{ "outputs": [1, 2, 3, 4, 5] }')


def test_FromJsonSingleBytesTensor():  # json_tensor_test.cc:897 (the "_bytes" suffix, json_tensor.cc:91)
    t = {"str_tensor_bytes": np.array([[b"hello", b"world"], [b"tf", b"serving"]], dtype=object)}
    compare_json(format_predict_response(t, "row"), '{"predictions": [[{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}], '
                                                    '[{"b64": "dGY="}, {"b64": "c2VydmluZw=="}]]}')


def test_FromJsonSingleFloatTensorSixDigitPrecision():  # json_tensor_test.cc:924 (json_tensor.cc:139-157)
    t = {"float_tensor": np.array([[9000000, 999999, 0.50000], [.0003, .00003, 555557.5]], np.float32)}
    compare_json(format_predict_response(t, "row"),
                 '{"predictions": [[9e+06, 999999.0, 0.5], [0.0003, 3e-05, 555557.5]]}', as_strings=True)


def test_FromJsonSingleFloatTensorNonFinite():  # json_tensor_test.cc:951
    t = {"float_tensor": np.array([[np.nan, np.inf], [3, -np.inf]], np.float32)}
    compare_json(format_predict_response(t, "row"), '{"predictions": [[NaN, Infinity], [3.0, -Infinity]]}',
                 as_strings=True)


def test_whole_number_floats_are_decimals_as_strings():
    # json_tensor.cc:151 adds ".0": an upscaled image's 0-255 pixels are 217.0, never 217
    t = {"upscaled": np.array([[[217, 0], [255, 3]]], np.float32)}
    compare_json(format_predict_response(t, "row"), '{"predictions": [[[217.0, 0.0], [255.0, 3.0]]]}', as_strings=True)


def test_FromJsonSingleTensorErrors():  # json_tensor_test.cc:976
    with pytest.raises(ServingError, match="empty tensor map"):  # json_tensor.cc:1055
        format_predict_response({}, "row")
    with pytest.raises(ServingError, match="tensor type: complex64"):  # json_tensor.cc:945
        format_predict_response({"tensor": np.array([1, 2], np.complex64)}, "row")
    with pytest.raises(ServingError, match="no shape information"):  # json_tensor.cc:988
        format_predict_response({"tensor": np.array(1, np.int32)}, "row")


def test_FromJsonMultipleNamedTensors():  # json_tensor_test.cc:1011
    t = {"int_tensor": tensors(json.dumps({"t": INT_2x3x2}))["t"],
         "str_tensor": np.array([[b"foo", b"bar"], [b"baz", b"bat"]], dtype=object),
         "float_tensor": np.array([[1.0], [2.0]], np.float32),
         "double_scalar_tensor": np.array([8.0, 9.0], np.float64),
         "str_tensor_bytes": np.array([[b"hello", b"world"], [b"tf", b"serving"]], dtype=object)}
    compare_json(format_predict_response(t, "row"), '''{"predictions": [
      {"double_scalar_tensor": 8.0, "float_tensor": [1.0], "int_tensor": [[1, 2], [3, 4], [5, 6]],
       "str_tensor": ["foo", "bar"], "str_tensor_bytes": [ {"b64": "aGVsbG8="}, {"b64": "d29ybGQ="} ]},
      {"double_scalar_tensor": 9.0, "float_tensor": [2.0], "int_tensor": [[7, 8], [9, 0], [1, 2]],
       "str_tensor": ["baz", "bat"], "str_tensor_bytes": [ {"b64": "dGY="}, {"b64": "c2VydmluZw=="} ]}]}''')
    compare_json(format_predict_response(t, "columnar"), '''{"outputs": {
      "double_scalar_tensor": [8.0, 9.0], "float_tensor": [[1.0], [2.0]],
      "int_tensor": [[[1, 2], [3, 4], [5, 6]], [[7, 8], [9, 0], [1, 2]]],
      "str_tensor": [["foo", "bar"], ["baz", "bat"]],
      "str_tensor_bytes": [[{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}], [{"b64": "dGY="}, {"b64": "c2VydmluZw=="}]]}}''')


@pytest.mark.parametrize("first,second", [
    (np.zeros((2, 3), np.int32), np.array([[b"foo", b"bar", b"baz"]], dtype=object)),  # json_tensor_test.cc:1117
    (np.zeros((0, 2), np.int32), np.array([[b"foo", b"bar"]], dtype=object)),  # json_tensor_test.cc:1198
])
def test_FromJsonMultipleNamedTensorsErrors(first, second):  # and FromJsonMultipleZeroBatchTensorsErrors
    with pytest.raises(ServingError, match="inconsistent batch size"):  # json_tensor.cc:994
        format_predict_response({"int_tensor": first, "str_tensor": second}, "row")


def test_FromJsonSingleZeroBatchTensor():  # json_tensor_test.cc:1153
    compare_json(format_predict_response({"int_tensor": np.zeros((0, 2), np.int32)}, "row"), '{ "predictions": [] }')


def test_FromJsonMultipleZeroBatchTensors():  # json_tensor_test.cc:1170
    t = {"str_tensor": np.zeros((0, 1, 2), dtype=object), "float_tensor": np.zeros((0, 3, 4), np.float32)}
    compare_json(format_predict_response(t, "row"), '{ "predictions": [] }')


# --- FillClassificationRequestFromJson / FillRegressionRequestFromJson (the :classify and
# :regress bodies our server parses and checks before answering, as TF Serving does) --------
def _example_text(features: dict) -> str:
    parts = []
    for name, (kind, values) in features.items():
        vals = " ".join(f"value: {v}" for v in values)
        parts.append(f'feature {{ key: "{name}" value {{ {kind} {{ {vals} }} }} }}')
    return "features { " + " ".join(parts) + " }"


def test_RequestNoContext():  # json_tensor_test.cc:1242
    from tensorflow_serving.apis import input_pb2

    name, got = parse_classify_regress_request(loads(b'''{"examples": [
        {"names": [ "foo", "bar" ], "ratings": [ 8.0, 9.0 ], "age": 20},
        {"names": [ "baz" ], "ratings": 6.0}]}'''))
    want = text_format.Parse(
        "example_list { examples { " + _example_text({
            "names": ("bytes_list", ['"foo"', '"bar"']), "ratings": ("float_list", [8.0, 9.0]),
            "age": ("int64_list", [20])}) + " } examples { " + _example_text({
                "names": ("bytes_list", ['"baz"']), "ratings": ("float_list", [6.0])}) + " } }", input_pb2.Input())
    assert name == "" and got == want


def test_RequestWithContextAndSignature():  # json_tensor_test.cc:1312
    name, got = parse_classify_regress_request(loads(b'''{
      "signature_name": "custom_signture",
      "context": {"query": "pizza", "location": [ "sfo" ]},
      "examples": [
        {"names": [ "foo", "bar" ], "ratings": [ 8.0, 9.0, NaN, Infinity ], "age": 20},
        {"names": [ "baz", { "b64": "aGVsbG8=" } ], "ratings": 6.0, "intboolmix": [ 1, true, false ]},
        {"names": "bar", "ratings": -Infinity}]}'''))
    assert name == "custom_signture"
    ctx = got.example_list_with_context
    assert list(ctx.context.features.feature["query"].bytes_list.value) == [b"pizza"]
    assert list(ctx.context.features.feature["location"].bytes_list.value) == [b"sfo"]
    e0, e1, e2 = ctx.examples
    assert str(list(e0.features.feature["ratings"].float_list.value)) == "[8.0, 9.0, nan, inf]"
    assert list(e0.features.feature["age"].int64_list.value) == [20]
    assert list(e1.features.feature["names"].bytes_list.value) == [b"baz", b"hello"]
    assert list(e1.features.feature["intboolmix"].int64_list.value) == [1, 1, 0]
    assert list(e2.features.feature["names"].bytes_list.value) == [b"bar"]
    assert list(e2.features.feature["ratings"].float_list.value) == [float("-inf")]


@pytest.mark.parametrize("body,message", [  # json_tensor_test.cc:1445 JsonErrors
    ('{"signature_name": [ "hello" ], "examples": [ { "names": [ "foo", "bar" ] } ]}',
     "'signature_name' key must be a string"),  # json_tensor.cc:283
    ('{"context": [ { "names": [ "foo", "bar" ] } ]}', "Example must be JSON object"),  # :799
    ('{"examples": { "names": [ "foo", "bar" ] }}', "list/array"),  # :846
    ('{"examples": [ [ { "names": [ "foo", "bar" ] } ] ]}', "Example must be JSON object"),  # :799
    ('{"examples": [ { "names": [ 10, null ] } ]}', "names has element with unexpected JSON type: Null"),  # :743
    ('{"examples": [ { "names": [ 10, 10.0 ] } ]}', "feature: names expecting type: int64"),  # :732
    ('{"examples": [ { "names": [ 10, { "test": 10 } ] } ]}', "names has element with unexpected JSON type: Object"),
    ('{"examples": [ { "names": [ [10], 20 ] } ]}', "names has element with unexpected JSON type: Array"),  # :766
    ('{"examples": [ { "names": [ 20, 18446744073709551603 ] } ]}', "Only int64_t is supported"),  # :787
])
def test_JsonErrors(body, message):
    with pytest.raises(ServingError) as err:
        parse_classify_regress_request(loads(body.encode()))
    assert err.value.code.name == "INVALID_ARGUMENT" and message in err.value.message, err.value.message


@pytest.mark.parametrize("message", ['Bad key: "key"', "Bad key: 'key'"])
def test_StatusError(message):  # json_tensor_test.cc:1607 MakeJsonFromStatus (json_tensor.cc:1129)
    from sr_tf.serving.codec import error_body

    compare_json(error_body(message), json.dumps({"error": message}))
