"""`sr-tf predict`: upscale an image through a running TF Serving (or `sr-tf serve`) server."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "Send an image to a TF Serving-compatible server (REST http://... or gRPC grpc://host:port) and save the result."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="image file (PNG, JPEG, WebP, ...)")
    p.add_argument("output", help="where to write the upscaled PNG")
    p.add_argument("--server", default="http://localhost:8501",
                   help="http(s)://host:port for REST, grpc://host:port for gRPC (default: %(default)s)")
    p.add_argument("--model", required=True, help="model name on the server")
    p.add_argument("--version", type=int, help="model version (default: the newest)")
    p.add_argument("--label", help="model version label")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from sr_tf.serving.clients import GrpcClient, RestClient, ServingClientError

    try:
        data = Path(args.input).read_bytes()
        if args.server.startswith(("http://", "https://")):
            client = RestClient(args.server, args.model, args.version, args.label, timeout=args.timeout)
        elif args.server.startswith("grpc://"):
            client = GrpcClient(args.server[len("grpc://"):], args.model, args.version, args.label, timeout=args.timeout)
        else:
            raise ValueError(f"--server must start with http://, https:// or grpc://. Received: {args.server!r}")
        try:
            result = client.upscale_image(data)
        finally:
            client.close()
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_bytes(result)
    except (OSError, ValueError, ServingClientError) as err:
        print(f"sr-tf predict: {err}", file=sys.stderr)
        return 1
    print(f"Wrote {args.output} ({len(result)} bytes)")
    return 0
