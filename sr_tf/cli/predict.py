"""`sr-tf predict`: upscale an image through a running TF Serving (or `sr-tf serve`) server.

Over REST this needs requests, NumPy and Pillow, not TensorFlow (a call costs the request, not a
TensorFlow import); over gRPC, `tensorflow-serving-api` (which imports TensorFlow). An image whose
request would be over `--max-request-bytes` goes as tiles (`sr_tf.serving.request_limits`), and the
tiler imports TensorFlow.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sr_tf.cli.options import (
    TILE_PAD,
    UsageError,
    add_noise_level,
    add_quality,
    add_strip_metadata,
    flag_names,
    integer,
)

HELP = ("Send an image to a TF Serving-compatible server (REST http(s)://... or gRPC grpc://host:port; "
        "--ca-cert/--cert/--key for TLS) and save the result; an image over a request limit goes as tiles.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from sr_tf.serving.request_limits import (
        VERTEX_MAX_REQUEST_BYTES,  # light: no NumPy, no TensorFlow
    )

    p.add_argument("input", help="image file (PNG, JPEG, WebP, ...)")
    p.add_argument("output", help="where to write the upscaled image; its extension (.png, .jpg, .webp) sets the format")
    p.add_argument("--server", default="http://localhost:8501",
                   help="http(s)://host:port for REST, grpc://host:port for gRPC (default: %(default)s)")
    p.add_argument("--model", required=True, help="model name on the server")
    p.add_argument("--version", type=integer(1), help="model version (default: the newest)")
    p.add_argument("--label", help="model version label")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds (default: %(default)s)")
    p.add_argument("--ca-cert", help="PEM file of the CA that signed the server's certificate (https:// or TLS "
                                     "gRPC; default: the system's roots)")
    p.add_argument("--cert", help="PEM file of a client certificate, for servers that require one (mutual TLS)")
    p.add_argument("--key", help="PEM file of the client certificate's private key")
    p.add_argument("--max-request-bytes", type=integer(1), metavar="N",
                   help="send an image whose request would be larger as tiles, each request at most N bytes as "
                        f"sent, blended as the server blends its own tiles (default: {VERTEX_MAX_REQUEST_BYTES} for "
                        "Vertex AI endpoints, *aiplatform.googleapis.com, whose limit is 1.5 MB; otherwise none)")
    p.add_argument("--tile-pad", type=integer(0), default=TILE_PAD, metavar="P",
                   help="context pixels around each tile --max-request-bytes makes, as the server's export "
                        "(default: %(default)s, sr-tf export's)")
    p.add_argument("--concurrency", type=integer(1), default=4, metavar="K",
                   help="tile requests in flight at once (default: %(default)s)")
    add_noise_level(p)
    add_quality(p)
    add_strip_metadata(p)


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    from sr_tf.imageio import FORMATS  # numpy and PIL only: argument errors stay fast

    if output.suffix.lower() not in FORMATS:
        raise UsageError(f"OUTPUT must end in one of {', '.join(FORMATS)}. Received: {args.output!r}")
    if not args.server.startswith(("http://", "https://", "grpc://")):
        raise UsageError(f"--server must start with http://, https:// or grpc://. Received: {args.server!r}")
    if args.version is not None and args.label is not None:
        raise UsageError("give --version or --label, not both")
    if (args.cert is None) != (args.key is None):
        raise UsageError("give --cert and --key together")
    import requests

    from sr_tf.imageio import (
        decode_image,
        encode_image,
        format_for,
        png_with_metadata,
        read_header,
        read_metadata,
        upright,
    )
    from sr_tf.integrity import atomic_write_bytes
    from sr_tf.serving.clients import GrpcClient, RestClient, ServingClientError
    from sr_tf.serving.request_limits import default_max_request_bytes, upscale_within_limit

    limit = args.max_request_bytes or default_max_request_bytes(args.server)
    try:
        data = Path(args.input).read_bytes()
        metadata = read_metadata(data, args.input)
        if args.server.startswith("grpc://"):
            client = GrpcClient(args.server[len("grpc://"):], args.model, args.version, args.label, timeout=args.timeout,
                                ca_cert=args.ca_cert, cert=args.cert, key=args.key)
        else:
            client = RestClient(args.server, args.model, args.version, args.label, timeout=args.timeout,
                                ca_cert=args.ca_cert, cert=args.cert, key=args.key, connections=args.concurrency)
        try:
            # the server's decoder ignores EXIF orientation: send the pixels as a viewer shows them
            upscaled = upscale_within_limit(client, upright(data, args.input), max_request_bytes=limit,
                                            tile_pad=args.tile_pad, concurrency=args.concurrency,
                                            noise_level=args.noise_level)
        finally:
            client.close()
        result = upscaled.image  # PNG bytes
        # the encoded_image signature answers pixels only: the input's metadata is put back here
        if args.strip_metadata:
            metadata = None
        else:
            answer = read_header(result, "the server's answer", max_pixels=None)
            metadata = metadata.upscaled(answer.width, answer.height)
        fmt = format_for(output)
        if fmt != "PNG":
            result = encode_image(decode_image(result, "the server's answer"), fmt, quality=args.quality,
                                  metadata=metadata)
        elif metadata is not None:
            result = png_with_metadata(result, metadata)
        atomic_write_bytes(output, result)  # never half an image under OUTPUT's name
    except requests.exceptions.SSLError as err:
        print(f"sr-tf predict: TLS with {args.server} failed (check --ca-cert/--cert/--key): {err}", file=sys.stderr)
        return 1
    except requests.ConnectionError:
        print(f"sr-tf predict: cannot connect to {args.server}: is the server running?", file=sys.stderr)
        return 1
    except (OSError, ValueError, ServingClientError) as err:  # e.g. `max_request_bytes` too small: in flags
        print(f"sr-tf predict: {flag_names(str(err), args._parser)}", file=sys.stderr)
        return 1
    tiles = "" if upscaled.requests == 1 else (
        f"; {upscaled.requests} tiles of {upscaled.tile} pixels, requests of at most {upscaled.largest_request} bytes")
    print(f"Wrote {args.output} ({len(result)} bytes{tiles})")
    return 0
