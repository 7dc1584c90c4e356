"""One runtime: every path that upscales an image gives the same pixels.

The same tiny float32 model, the same images (RGB, grey, RGBA with a varying alpha, 16-bit RGB; odd
sizes, all larger than the 16-pixel tile) through `sr-tf upscale`, the exported SavedModel's two
signatures, `sr-tf serve`'s server over REST and gRPC, and `sr-tf batch-predict` with a `.keras` file,
with the SavedModel, and on OpenVINO. The TensorFlow paths must give identical pixel bytes (PNG
encoders differ, so the decoded arrays are compared); OpenVINO's own float32 kernels may move a
value across a rounding boundary: at most 1 level, on few pixels.

On the main before the runtime layer this failed three ways: grey output was BT.601 luma through
`sr-tf upscale` and the channel mean through the SavedModel; tiles were blended by `sr-tf upscale` and
cropped by the SavedModel; batch-predict split channels a third way.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.cli.cli_helpers import run_cli

pytestmark = pytest.mark.large

TILE, PAD = 16, 6


def _images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20)
    yy, xx = np.mgrid[0:19, 0:35]
    smooth = lambda h, w, c: (rng.random((h // 4 + 2, w // 4 + 2, c)) * 255).astype(np.uint8)  # noqa: E731
    def photo(h, w, c, dtype=np.uint8):
        img = Image.fromarray(smooth(h, w, 3)).resize((w, h), Image.BICUBIC)
        arr = np.asarray(img)
        if c == 1:
            arr = np.asarray(img.convert("L"))[..., None]
        if dtype == np.uint16:
            arr = arr.astype(np.uint16) * 257 + rng.integers(0, 257, arr.shape).astype(np.uint16)
        return arr
    rgba = np.dstack([photo(19, 35, 3), ((xx * 7 + yy * 3) % 256).astype(np.uint8)])
    return {"rgb": photo(37, 29, 3), "grey": photo(21, 23, 1), "rgba": rgba, "rgb16": photo(17, 20, 3, np.uint16)}


def _png(array: np.ndarray) -> bytes:
    from sr_tf.imageio import encode_image  # PIL cannot write 16-bit RGB

    return encode_image(array, "PNG")


def _decode(data: bytes) -> np.ndarray:
    from sr_tf.imageio import decode_image

    return decode_image(data, "output")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import keras

    from sr_tf.export import ExportConfig, export_savedmodel
    from sr_tf.models import SRVGGNetCompact

    root = tmp_path_factory.mktemp("one-runtime")
    keras.utils.set_random_seed(7)
    model = SRVGGNetCompact(num_feat=8, num_conv=3, upscale=2)
    model(np.zeros((1, 8, 8, 3), np.float32))
    model.save(root / "tiny.keras")
    version = export_savedmodel(model, root / "models" / "tiny" / "1",
                                ExportConfig(tile_size=TILE, tile_pad=PAD, warmup=False))
    src = root / "in"
    src.mkdir()
    images = _images()
    for name, arr in images.items():
        (src / f"{name}.png").write_bytes(_png(arr))
    return root, version, images


@pytest.fixture(scope="module")
def cli_upscale(setup):
    root, _, images = setup
    out = root / "upscale"
    status, _, stdout, stderr = run_cli(["upscale", str(root / "in"), "-o", str(out), "--model", str(root / "tiny.keras"),
                                         "--tile", str(TILE), "--tile-pad", str(PAD), "--no-progress"])
    assert status == 0, stderr[-2000:]
    return {name: _decode((out / f"{name}_out.png").read_bytes()) for name in images}


def _batch(root: Path, model: str, label: str, *extra: str) -> dict[str, np.ndarray]:
    out = root / f"batch-{label}"
    status, _, stdout, stderr = run_cli(["batch-predict", "--model", model, "--input", str(root / "in"),
                                         "--output", str(out), "--tile", str(TILE), "--tile-pad", str(PAD),
                                         "--no-progress", *extra])
    assert status == 0, stderr[-2000:]
    found = {}
    for path in out.rglob("*.png"):
        found[path.stem.split("_")[0]] = _decode(path.read_bytes())
    return found


def test_upscale_equals_the_savedmodels_encoded_signature(setup, cli_upscale):
    import tensorflow as tf

    _, version, images = setup
    fn = tf.saved_model.load(str(version)).signatures["encoded_image"]
    for name, arr in images.items():
        got = _decode(fn(image_bytes=tf.constant([_png(arr)]))["upscaled_bytes"].numpy()[0])
        want = cli_upscale[name]
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert got.tobytes() == want.tobytes(), f"{name}: {np.count_nonzero(got != want)} values differ"


def test_upscale_equals_serving_default_on_rgb(setup, cli_upscale):
    import tensorflow as tf

    _, version, images = setup
    fn = tf.saved_model.load(str(version)).signatures["serving_default"]
    out = fn(images=tf.constant(images["rgb"][None].astype(np.float32)))["upscaled"].numpy()[0]
    assert out.astype(np.uint8).tobytes() == cli_upscale["rgb"].tobytes()


def test_served_rest_and_grpc_equal_upscale(setup, cli_upscale):
    import grpc
    import requests
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from sr_tf.serving.models import ModelConfig
    from sr_tf.serving.server import ModelServer, ServerConfig

    _, version, images = setup
    server = ModelServer([ModelConfig("tiny", str(version.parent))],
                         ServerConfig(rest_port=0, grpc_port=0, poll_seconds=0)).start()
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for name, arr in images.items():
            payload = {"signature_name": "encoded_image", "instances": [{"b64": base64.b64encode(_png(arr)).decode()}]}
            reply = requests.post(f"http://127.0.0.1:{server.rest_port}/v1/models/tiny:predict",
                                  data=json.dumps(payload), timeout=60)
            assert reply.status_code == 200, reply.text[:500]
            rest = _decode(base64.b64decode(reply.json()["predictions"][0]["b64"]))
            request = predict_pb2.PredictRequest()
            request.model_spec.name, request.model_spec.signature_name = "tiny", "encoded_image"
            request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto([_png(arr)], dtype=tf.string))
            response = stub.Predict(request, timeout=60)
            via_grpc = _decode(response.outputs["upscaled_bytes"].string_val[0])
            want = cli_upscale[name]
            assert rest.tobytes() == want.tobytes(), f"REST {name}"
            assert via_grpc.tobytes() == want.tobytes(), f"gRPC {name}"
        channel.close()
    finally:
        server.stop()


def test_batch_predict_keras_and_savedmodel_equal_upscale(setup, cli_upscale):
    root, version, images = setup
    for label, spec in (("keras", str(root / "tiny.keras")), ("savedmodel", str(version))):
        got = _batch(root, spec, label)
        assert set(got) == set(images), (label, sorted(got))
        for name, want in cli_upscale.items():
            assert got[name].tobytes() == want.tobytes(), f"batch-predict {label}: {name}"


def test_batch_predict_openvino_within_one_level(setup, cli_upscale):
    pytest.importorskip("openvino")
    root, _, images = setup
    got = _batch(root, str(root / "tiny.keras"), "openvino", "--backend", "openvino")
    for name, want in cli_upscale.items():
        diff = np.abs(got[name].astype(np.int64) - want.astype(np.int64))
        peak = 2 if want.dtype == np.uint16 else 1
        assert got[name].shape == want.shape and diff.max() <= peak and np.mean(diff > 0) < 0.01, name
