"""A 2-megapixel image through Vertex AI's 1.5 MB request limit (`sr-tf predict --max-request-bytes`).

An in-process `sr-tf serve` with a tiny SRVGGNetCompact x2 (8 features, exported untiled) answers
one whole request and then the tiles `sr_tf.serving.request_limits.upscale_within_limit` sends;
prints the requests' count and largest size, wall time of each way, and how many pixels of the
tiled result differ from the whole request's. The image is docs/side_by_side_twowings.png resized
to 1632x1224 with +-3 levels of noise (PNG, about 2.8 MB; about 3.7 MB as one REST request).

    python benchmarks/request_tiles.py
    python benchmarks/request_tiles.py --limit 500000 --concurrency 1 4

Client and server share this process and its cores: the times show the tiles' overhead (PNG
encoding, decoding and the client-side blend), not what concurrency gains against a remote server.
"""

from __future__ import annotations

import argparse
import io
import pathlib
import tempfile
import time

import numpy as np
from machine import describe
from PIL import Image

REPO = pathlib.Path(__file__).resolve().parents[1]


def main() -> None:
    import keras

    from sr_tf.export import ExportConfig, export_savedmodel
    from sr_tf.imageio import decode_image
    from sr_tf.models import SRVGGNetCompact
    from sr_tf.serving.clients import RestClient
    from sr_tf.serving.models import ModelConfig
    from sr_tf.serving.request_limits import VERTEX_MAX_REQUEST_BYTES, upscale_within_limit
    from sr_tf.serving.server import ModelServer, ServerConfig
    from sr_tf.serving.service import Limits

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=VERTEX_MAX_REQUEST_BYTES)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    p.add_argument("--tile-pad", type=int, default=16)
    args = p.parse_args()

    keras.utils.set_random_seed(1)
    model = SRVGGNetCompact(num_feat=8, num_conv=1, upscale=2)
    model(np.zeros((1, 4, 4, 3), np.float32))
    version = export_savedmodel(model, pathlib.Path(tempfile.mkdtemp()) / "tiny" / "1",
                                ExportConfig(tile_size=0, warmup_size=8))
    src = Image.open(REPO / "docs" / "side_by_side_twowings.png").convert("RGB").resize((1632, 1224), Image.BICUBIC)
    noisy = np.asarray(src).astype(np.int16) + np.random.default_rng(0).integers(-3, 4, (1224, 1632, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buf, "PNG")
    data = buf.getvalue()
    print(describe())
    print(f"input: 1632x1224 PNG, {len(data)} bytes")
    limits = Limits(max_request_bytes=64 << 20, max_pixels=4_000_000, timeout_seconds=600)
    server = ModelServer([ModelConfig("tiny", str(version.parent))],
                         ServerConfig(rest_port=0, grpc_port=0, poll_seconds=0, limits=limits)).start()
    url = f"http://127.0.0.1:{server.rest_port}"
    try:
        start = time.perf_counter()
        whole = upscale_within_limit(RestClient(url, "tiny", timeout=600), data, max_request_bytes=None,
                                     tile_pad=args.tile_pad)
        print(f"whole: 1 request of {whole.largest_request} bytes, {time.perf_counter() - start:.1f} s")
        reference = decode_image(whole.image).astype(np.int64)
        for k in args.concurrency:
            client = RestClient(url, "tiny", timeout=600, connections=k)
            start = time.perf_counter()
            tiled = upscale_within_limit(client, data, max_request_bytes=args.limit, tile_pad=args.tile_pad,
                                         concurrency=k)
            seconds = time.perf_counter() - start
            diff = np.abs(decode_image(tiled.image).astype(np.int64) - reference)
            print(f"limit {args.limit}, concurrency {k}: {tiled.requests} requests (tile {tiled.tile}), largest "
                  f"{tiled.largest_request} bytes, {seconds:.1f} s; vs whole: {np.count_nonzero(diff)} values "
                  f"differ (max {diff.max()})")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
