"""`sr-tf predict --max-request-bytes`: an image too large for one request goes as tiles, each request
under the limit (which a server holding that limit enforces), and the blended result is one whole
request's."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image
from serving_helpers import assert_upscaled_equal, image_bytes

from sr_tf.cli import main
from sr_tf.serving import request_limits

LIMIT = 3000  # bytes: the image below takes ~6 KB in one request, its tiles up to ~2.4 KB each
# The tiny model's receptive radius is 3 input pixels (three 3x3 convs): context 6 (a blend band
# of 3 + 3 pixels of margin) covers it, so tiles blend back to the untiled output; 4 does not.
TILE_PAD = "6"


@pytest.fixture(scope="module")
def small_limit_server(exported):
    """A second server for the tiny model that refuses every REST body (413) and gRPC message
    (RESOURCE_EXHAUSTED) over LIMIT bytes."""
    from sr_tf.serving.models import ModelConfig
    from sr_tf.serving.server import ModelServer, ServerConfig
    from sr_tf.serving.service import Limits

    config = ServerConfig(rest_port=0, grpc_port=0, poll_seconds=0, limits=Limits(max_request_bytes=LIMIT))
    srv = ModelServer([ModelConfig("tiny", str(exported.parent))], config).start()
    yield srv
    srv.stop()


@pytest.fixture()
def small_limit_url(small_limit_server):
    return f"http://127.0.0.1:{small_limit_server.rest_port}"


class _Calls(list):
    redirect: dict


@pytest.fixture()
def sent(monkeypatch):
    """Every request the client sends, as (method, URL, body bytes); `redirect` maps URL prefixes."""
    calls, redirect = _Calls(), {}
    original = requests.Session.request

    def request(self, method, url, *args, data=None, **kwargs):
        for prefix, target in redirect.items():
            if url.startswith(prefix):
                url = target + url[len(prefix):]
        calls.append((method, url, len(data or b"")))
        return original(self, method, url, *args, data=data, **kwargs)

    monkeypatch.setattr(requests.Session, "request", request)
    calls.redirect = redirect
    return calls


@pytest.fixture()
def photo(tmp_path):
    # Flat on the left, noise (which PNG barely compresses) on the right: tiles of the same size take
    # requests of very different sizes, and the whole image's bytes per pixel underestimate the noisy ones'.
    rgb = np.full((45, 61, 3), 128, np.uint8)
    rgb[:, 30:] = np.random.default_rng(5).integers(0, 256, (45, 31, 3), dtype=np.uint8)
    (tmp_path / "in.png").write_bytes(image_bytes(rgb))
    return tmp_path / "in.png"


def _pixels_of(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image)


def _pixels(path: Path) -> np.ndarray:
    return _pixels_of(path.read_bytes())


def test_tiles_keep_every_request_under_the_limit_and_blend_to_the_whole_request(
        photo, small_limit_url, rest_url, sent, tmp_path, capsys):
    assert main(["predict", "--server", rest_url, "--model", "tiny", str(photo), str(tmp_path / "whole.png")]) == 0
    whole_posts = [size for method, _, size in sent if method == "POST"]
    assert len(whole_posts) == 1 and whole_posts[0] > 1.9 * LIMIT
    sent.clear()

    assert main(["predict", "--server", small_limit_url, "--model", "tiny", "--max-request-bytes", str(LIMIT),
                 "--tile-pad", TILE_PAD, "--concurrency", "3", str(photo), str(tmp_path / "tiled.png")]) == 0
    posts = [size for method, _, size in sent if method == "POST"]
    assert len(posts) >= 4 and max(posts) <= LIMIT, posts  # and the server refused none of them
    assert f"{len(posts)} tiles" in capsys.readouterr().out
    assert_upscaled_equal(_pixels(tmp_path / "tiled.png"), _pixels(tmp_path / "whole.png"))


def test_a_limit_too_small_for_the_smallest_tile_names_the_flag(photo, rest_url, tmp_path, capsys):
    assert main(["predict", "--server", rest_url, "--model", "tiny", "--max-request-bytes", "400",
                 str(photo), str(tmp_path / "out.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sr-tf predict: --max-request-bytes=400 is too small for this image: a request for "
                          "one of the smallest tiles (8x8 pixels with up to 16 pixels of context"), err
    assert "--tile-pad=16" in err
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("url,limit", [
    ("https://us-central1-aiplatform.googleapis.com", request_limits.VERTEX_MAX_REQUEST_BYTES),
    ("https://europe-west4-prediction-aiplatform.googleapis.com/v1", request_limits.VERTEX_MAX_REQUEST_BYTES),
    ("http://localhost:8501", None),
    ("https://aiplatform.example.com", None),
])
def test_vertex_endpoints_default_to_vertex_limit(url, limit):
    assert request_limits.default_max_request_bytes(url) == limit
    assert request_limits.VERTEX_MAX_REQUEST_BYTES == 1_500_000


def test_a_vertex_url_tiles_by_default(photo, rest_url, sent, monkeypatch, tmp_path):
    vertex = "https://us-central1-aiplatform.googleapis.com"
    sent.redirect[vertex] = rest_url  # the "Vertex endpoint" is the local server
    monkeypatch.setattr(request_limits, "VERTEX_MAX_REQUEST_BYTES", 5000)  # so that a small image tiles
    assert main(["predict", "--server", vertex, "--model", "tiny", "--tile-pad", TILE_PAD,
                 str(photo), str(tmp_path / "out.png")]) == 0
    posts = [size for method, _, size in sent if method == "POST"]
    assert len(posts) >= 2 and max(posts) <= 5000, posts
    sent.clear()
    assert main(["predict", "--server", vertex, "--model", "tiny", "--max-request-bytes", "100000",
                 str(photo), str(tmp_path / "out.png")]) == 0
    assert len([1 for method, _, _ in sent if method == "POST"]) == 1  # the flag wins over the default


def test_grpc_tiles_are_sized_as_serialized_messages(photo, small_limit_server, grpc_target, rest_url):
    from sr_tf.serving.clients import GrpcClient, RestClient

    data = photo.read_bytes()
    whole = RestClient(rest_url, "tiny").upscale_image(data)
    client = GrpcClient(f"127.0.0.1:{small_limit_server.grpc_port}", "tiny")
    try:
        tiled = request_limits.upscale_within_limit(client, data, max_request_bytes=LIMIT, tile_pad=int(TILE_PAD))
    finally:
        client.close()
    assert tiled.requests >= 4 and tiled.largest_request <= LIMIT  # and the server refused none of them
    assert_upscaled_equal(_pixels_of(tiled.image), _pixels_of(whole))


def test_tiles_keep_channels_and_bit_depth(small_limit_url, rest_url):
    """16-bit grey + alpha (partly transparent in every tile): tiles are cut and blended at 16 bits."""
    from sr_tf.imageio import decode_image, encode_image
    from sr_tf.serving.clients import RestClient

    rng = np.random.default_rng(7)
    grey_alpha = np.stack([rng.integers(0, 65536, (30, 31)), rng.integers(0, 60000, (30, 31))], -1)
    data = encode_image(grey_alpha.astype(np.uint16), "PNG")
    whole = decode_image(RestClient(rest_url, "tiny").upscale_image(data))
    tiled = request_limits.upscale_within_limit(RestClient(small_limit_url, "tiny"), data,
                                                max_request_bytes=LIMIT, tile_pad=int(TILE_PAD))
    assert tiled.requests >= 4
    out = decode_image(tiled.image)
    assert out.dtype == np.uint16 and out.shape == (60, 62, 2)
    assert_upscaled_equal(out, whole)
