"""Large images through small request limits: an image whose request would be too large goes as tiles.

Vertex AI's public endpoints take at most 1.5 MB a request; a 2-megapixel photo is several times
that. `upscale_within_limit(client, image, max_request_bytes=N, tile_pad=P)` sends an image whose
request body would be over N bytes as tiles, each its own request of at most N bytes, and blends
the upscaled tiles into one image:

* Geometry and blend are the one tiler's (`sr_tf.tiling`): `tile_boxes` cuts the image into cores
  of balanced sizes with up to P pixels of context on each side, and `upscale_tiled` blends the
  upscaled tiles across the cuts, as the exported model's graph and `sr-tf upscale` do.
* Each tile is a PNG of the image's channels and bit depth, sent as the client sends any image
  (`client.images_request`: over REST the JSON body with the PNG as `{"b64": ...}`, over gRPC the
  serialized `PredictRequest`). The tile edge is the largest found for which every such request
  measures at most N bytes; every request is measured before any is sent.
* Up to `concurrency` tiles are in flight at once.

What the result equals. The server rounds each tile's output to whole numbers before the client
blends them. Where the context covers the model's receptive field (P - P // 2 >= its radius in input
pixels), overlapping tiles agree with each other and with the untiled output, the blend of equal
whole numbers rounds back to them, and the result equals one whole request's, except where float
rounding in the model moves a value across a .5 boundary (at most 1 apart). Where the context is
short of the receptive field, each blended pixel is within 1 of the rounded float blend that
`sr-tf upscale --tile T --tile-pad P` computes, for that tiling.

The tiles are cut from the image as `sr_tf.imageio.decode_image` reads it: EXIF orientation applied,
and a JPEG decoded by Pillow, whose pixels may differ by a level from TensorFlow's decoder on the
server. An image with a partly transparent alpha channel may differ from a whole request in tiles
that are fully opaque: the server keeps an opaque tile's alpha at 1 without running the model.

Importing this module is light (no NumPy, no TensorFlow): only the tiled path imports TensorFlow,
the tiler being TensorFlow code; an image that fits in one request is sent as it is.
"""

from __future__ import annotations

import math
import typing
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

if typing.TYPE_CHECKING:
    import numpy as np

# Vertex AI online prediction's payload limit for public endpoints, "1.5 MB": decimal megabytes,
# the smaller reading, so a request under it is under either.
VERTEX_MAX_REQUEST_BYTES = 1_500_000
# The smallest tile core edge in input pixels: below it, context would be most of every request.
MIN_TILE = 8


def is_vertex_endpoint(url: str) -> bool:
    """Whether `url` is a Vertex AI prediction endpoint (`*aiplatform.googleapis.com`,
    `*-prediction-aiplatform*`)."""
    host = (urlparse(url).hostname or "").lower()
    return host.endswith("aiplatform.googleapis.com") or "-prediction-aiplatform" in host


def default_max_request_bytes(url: str) -> int | None:
    """The request limit to keep to for a server at `url`: Vertex AI's for its endpoints, else None
    (no limit)."""
    return VERTEX_MAX_REQUEST_BYTES if is_vertex_endpoint(url) else None


class Upscaled(typing.NamedTuple):
    """What `upscale_within_limit` returns: PNG bytes, how many requests made it, the largest's size
    in bytes, and the tile core edge in input pixels (0: the whole image in one request)."""

    image: bytes
    requests: int
    largest_request: int
    tile: int


def upscale_within_limit(client, image: bytes, *, max_request_bytes: int | None, tile_pad: int,
                         concurrency: int = 4, noise_level: float | None = None) -> Upscaled:
    """Upscales an encoded image through `client`, in requests of at most `max_request_bytes` each.

    Args:
      client: a `RestClient` or `GrpcClient` (`images_request`, `request_size`, `send_images_request`).
      image: encoded image bytes (PNG, JPEG, WebP, ...).
      max_request_bytes: largest request to send, in bytes as encoded on the wire; None: no limit.
      tile_pad: context pixels around each tile (as the server's export: `sr-tf export --tile-pad`).
      concurrency: most requests in flight at once.
      noise_level: for models with a noise input (SRMD), as `client.upscale_images`.

    Returns:
      `Upscaled`; its `image` is PNG bytes of `[s*H, s*W, C]` with the input's channels and bit depth.

    Raises:
      ValueError: `max_request_bytes` too small for a request of even the smallest tile, or
        bad arguments; `ServingClientError`: a request the server refused.
    """
    if max_request_bytes is not None and max_request_bytes < 1:
        raise ValueError(f"`max_request_bytes` must be >= 1. Received: max_request_bytes={max_request_bytes!r}")
    if tile_pad < 0 or concurrency < 1:
        raise ValueError(f"`tile_pad` must be >= 0 and `concurrency` >= 1. Received: tile_pad={tile_pad!r}, "
                         f"concurrency={concurrency!r}")
    whole = client.images_request([image], noise_level)
    size = client.request_size(whole)
    if max_request_bytes is None or size <= max_request_bytes:
        return Upscaled(client.send_images_request(whole)[0], 1, size, 0)

    from sr_tf.imageio import decode_image

    pixels = decode_image(image)  # [H, W, C] uint8 / uint16
    tile, boxes, requests = _plan(client, pixels, max_request_bytes, tile_pad, noise_level,
                                  bytes_per_pixel=size / (pixels.shape[0] * pixels.shape[1]))
    with ThreadPoolExecutor(max_workers=min(concurrency, len(requests))) as pool:
        futures = [pool.submit(lambda r: client.send_images_request(r)[0], r) for r in requests]
        try:
            outputs = [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    result = _blend(pixels, boxes, outputs, tile, tile_pad)
    return Upscaled(result, len(requests), max(client.request_size(r) for r in requests), tile)


def _plan(client, pixels: np.ndarray, limit: int, tile_pad: int, noise_level, bytes_per_pixel: float):
    """(tile, boxes `[n, 4]`, requests) with every request at most `limit` bytes, the tile as large as
    found: a first guess from the whole request's bytes per pixel, shrunk (the size of a request
    goes with its tile's area) until every request fits."""
    from sr_tf.imageio import encode_image
    from sr_tf.tiling import tile_boxes

    height, width = pixels.shape[:2]
    smallest = min(MIN_TILE, max(height, width))

    def fitting(edge: float) -> int:
        return max(smallest, min(max(height, width), int(edge) - 2 * tile_pad))

    tile = fitting(0.95 * math.sqrt(limit / bytes_per_pixel))
    while True:
        boxes = tile_boxes(height, width, tile, tile_pad).numpy()
        requests, over = [], None
        for y0, y1, x0, x1 in boxes:
            request = client.images_request([encode_image(pixels[y0:y1, x0:x1], "PNG")], noise_level)
            size = client.request_size(request)
            if size > limit:
                over = (size, y1 - y0, x1 - x0)
                break
            requests.append(request)
        if over is None:
            return tile, boxes, requests
        size, h, w = over
        if tile == smallest:
            raise ValueError(
                f"max_request_bytes={limit} is too small for this image: a request for one of the smallest "
                f"tiles ({smallest}x{smallest} pixels with up to {tile_pad} pixels of context on each side, "
                f"{h}x{w} here) takes {size} bytes. Allow larger requests, or less context (tile_pad={tile_pad})."
            )
        tile = min(tile - 1, fitting(0.97 * max(h, w) * math.sqrt(limit / size)))


def _blend(pixels: np.ndarray, boxes: np.ndarray, outputs: list[bytes], tile: int, tile_pad: int) -> bytes:
    """The upscaled tiles (PNG bytes, in `boxes` order) blended by `sr_tf.tiling.upscale_tiled`."""
    import numpy as np
    import tensorflow as tf

    from sr_tf.imageio import decode_image, encode_image
    from sr_tf.tiling import upscale_tiled

    tiles = [decode_image(data, f"the server's answer for tile {k + 1} of {len(outputs)}")
             for k, data in enumerate(outputs)]
    (y0, y1, x0, x1), first = boxes[0], tiles[0]
    scale = first.shape[0] // (y1 - y0)
    for k, ((y0, y1, x0, x1), out) in enumerate(zip(boxes, tiles, strict=True)):
        if out.shape != (scale * (y1 - y0), scale * (x1 - x0), pixels.shape[2]):
            raise ValueError(f"the server upscaled tile {k + 1} of {len(tiles)} ({y1 - y0}x{x1 - x0}x"
                             f"{pixels.shape[2]}) to {'x'.join(map(str, out.shape))}, not by x{scale} as tile 1")
    order = iter(range(len(tiles)))

    def forward(crop: tf.Tensor) -> np.ndarray:  # called in `tile_boxes` order, once a tile
        k = next(order)
        assert tuple(crop.shape[1:3]) == (boxes[k][1] - boxes[k][0], boxes[k][3] - boxes[k][2]), (k, crop.shape)
        return tiles[k][None].astype(np.float32)

    x = tf.convert_to_tensor(pixels[None], tf.float32)  # whole numbers: only the crops' shapes are read
    blended = upscale_tiled(x, forward, scale, tile, tile_pad).numpy()[0]
    peak = np.iinfo(pixels.dtype).max
    return encode_image(np.clip(np.round(blended), 0, peak).astype(pixels.dtype), "PNG")
