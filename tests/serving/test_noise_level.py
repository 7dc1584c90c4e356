"""A model with a noise input (SRMD): `noise_level` in its exported signatures, with a default.

The SignatureDef records the default (`defaults`), which TF Serving's gRPC Predict applies to an
input left out (predict_util.cc: fewer inputs are allowed when `signature.defaults()` is non-empty);
its REST parser wants every input (json_tensor.cc: "Missing named input"), so REST clients send it.
Other models' signatures keep `images` / `image_bytes` alone.
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from serving_helpers import image_bytes
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_service_pb2_grpc

from sr_tf.export import ExportConfig, export_savedmodel
from sr_tf.models import SRMD

DEFAULT = 5.0


def _signature_defs(version_dir) -> dict:
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((version_dir / "saved_model.pb").read_bytes())
    return dict(saved.meta_graphs[0].signature_def)


@pytest.fixture(scope="module")
def srmd():
    import keras

    keras.utils.set_random_seed(3)
    model = SRMD(scale=2, num_feat=8, num_conv=3, noise_level=DEFAULT)
    model(np.zeros((1, 4, 4, 3), np.float32))
    rng = np.random.default_rng(1)  # weights large enough that the noise channel shows in 8-bit output
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


@pytest.fixture(scope="module")
def srmd_server(srmd, tmp_path_factory):
    from sr_tf.serving.models import ModelConfig
    from sr_tf.serving.server import ModelServer, ServerConfig

    version = export_savedmodel(srmd, tmp_path_factory.mktemp("srmd") / "srmd" / "1",
                                ExportConfig(tile_size=5, tile_pad=6, warmup_size=8))  # pad >= 2 * radius 3
    srv = ModelServer([ModelConfig("srmd", str(version.parent))], ServerConfig(rest_port=0, grpc_port=0,
                                                                                poll_seconds=0)).start()
    yield srv, version
    srv.stop()


def _expected(model, x, levels):
    out = model(x / 255.0, noise_level=np.asarray(levels, np.float32)).numpy()
    return np.clip(np.round(out * 255.0), 0, 255)


def test_signature_defs_have_noise_level_with_a_default_only_for_srmd(srmd_server, exported):
    defs = _signature_defs(srmd_server[1])
    for name, image_input in (("serving_default", "images"), ("encoded_image", "image_bytes")):
        assert set(defs[name].inputs) == {image_input, "noise_level"}
        assert tf.make_ndarray(defs[name].defaults["noise_level"]).tolist() == [DEFAULT]
    plain = _signature_defs(exported)  # the shared tiny SRVGGNetCompact export: unchanged
    assert set(plain["serving_default"].inputs) == {"images"} and not plain["serving_default"].defaults
    assert set(plain["encoded_image"].inputs) == {"image_bytes"} and not plain["encoded_image"].defaults


def test_rest_multi_input_per_image_noise_levels(srmd_server, srmd):
    srv, _ = srmd_server
    x = np.random.default_rng(0).uniform(0, 255, (2, 7, 6, 3)).astype(np.float32)
    x = np.round(x)
    body = {"inputs": {"images": x.tolist(), "noise_level": [0.0, 30.0]}}
    r = requests.post(f"http://127.0.0.1:{srv.rest_port}/v1/models/srmd:predict", json=body, timeout=60)
    assert r.status_code == 200, r.text
    got = np.asarray(r.json()["outputs"], np.float32)
    np.testing.assert_allclose(got, _expected(srmd, x, [0.0, 30.0]), atol=1)
    assert np.abs(got[0] - _expected(srmd, x[:1], [30.0])[0]).max() > 2  # the level is used
    rows = {"instances": [{"images": x[0].tolist(), "noise_level": 30.0}]}  # row format: one level per instance
    r = requests.post(f"http://127.0.0.1:{srv.rest_port}/v1/models/srmd:predict", json=rows, timeout=60)
    np.testing.assert_allclose(np.asarray(r.json()["predictions"]), _expected(srmd, x[:1], [30.0]), atol=1)
    bad = {"inputs": {"images": x.tolist(), "noise_level": [-2.0]}}
    r = requests.post(f"http://127.0.0.1:{srv.rest_port}/v1/models/srmd:predict", json=bad, timeout=60)
    assert r.status_code == 400 and "noise_level must be >= 0" in r.json()["error"]


def test_grpc_without_noise_level_takes_the_default(srmd_server, srmd):
    srv, _ = srmd_server
    x = np.round(np.random.default_rng(1).uniform(0, 255, (1, 6, 5, 3))).astype(np.float32)
    png = image_bytes(x[0].astype(np.uint8))
    with grpc.insecure_channel(f"127.0.0.1:{srv.grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="srmd"))
        request.inputs["images"].CopyFrom(tf.make_tensor_proto(x))
        got = tf.make_ndarray(stub.Predict(request, timeout=60).outputs["upscaled"])
        encoded = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name="srmd", signature_name="encoded_image"))
        encoded.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([png, png]))
        encoded.inputs["noise_level"].CopyFrom(tf.make_tensor_proto(np.array([0.0, 30.0], np.float32)))
        pngs = tf.make_ndarray(stub.Predict(encoded, timeout=60).outputs["upscaled_bytes"])
    np.testing.assert_allclose(got, _expected(srmd, x, [DEFAULT]), atol=1)
    for data, level in zip(pngs, (0.0, 30.0), strict=True):
        decoded = tf.io.decode_png(data).numpy().astype(np.float32)
        np.testing.assert_allclose(decoded, _expected(srmd, x, [level])[0], atol=1)


def test_rest_client_sends_the_default_or_a_given_noise_level(srmd_server, srmd, rest_url):
    from sr_tf.serving.clients import RestClient

    srv, _ = srmd_server
    x = np.round(np.random.default_rng(2).uniform(0, 255, (1, 6, 5, 3))).astype(np.float32)
    client = RestClient(f"http://127.0.0.1:{srv.rest_port}", "srmd")
    for level, expected in ((None, DEFAULT), (30.0, 30.0)):
        out = tf.io.decode_png(client.upscale_image(image_bytes(x[0].astype(np.uint8)), level)).numpy()
        np.testing.assert_allclose(out.astype(np.float32), _expected(srmd, x, [expected])[0], atol=1)
    client.close()
    plain = RestClient(rest_url, "tiny")  # a model without a noise input refuses one, naming the parameter
    with pytest.raises(ValueError, match="`noise_level`: the served model takes no noise level"):
        plain.upscale_image(image_bytes(x[0].astype(np.uint8)), 5.0)
    assert plain.upscale_image(image_bytes(x[0].astype(np.uint8)))[:4] == b"\x89PNG"
    plain.close()


def test_cli_export_noise_level_sets_the_signature_default(srmd, tmp_path, capsys):
    from sr_tf.cli import main
    from sr_tf.runtime.savedmodels import signature_defaults

    srmd.save(tmp_path / "srmd.keras")
    out = tmp_path / "m" / "1"
    argv = ["export", "--model", str(tmp_path / "srmd.keras"), "--out", str(out), "--tile-size", "0", "--no-warmup"]
    assert main([*argv, "--noise-level", "12"]) == 0
    defaults = signature_defaults(str(out))
    assert {k: v["noise_level"].tolist() for k, v in defaults.items()} == {
        "serving_default": [12.0], "encoded_image": [12.0]}
    assert main([*argv, "--overwrite", "--noise-level", "99"]) == 2
    assert "noise_level=99" not in (err := capsys.readouterr().err) and "--noise-level=99" in err
