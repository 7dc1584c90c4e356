"""`Limits`: the request limits of the embedded server, in a module without TensorFlow so that
`sr-tf serve`'s flags take their defaults from here before TensorFlow is imported."""

from __future__ import annotations

import dataclasses

from sr_tf.config import ConfigBase
from sr_tf.serving.errors import Code, ServingError


@dataclasses.dataclass(frozen=True)
class Limits(ConfigBase):
    """Request limits, each checked before the request's data is decoded or the model runs.

    Attributes:
      max_request_bytes: largest REST body and gRPC message (larger: 413 / RESOURCE_EXHAUSTED).
      max_pixels: most input pixels per request: N*H*W of image tensors (from their shape), or the
        sum of width*height of encoded images (from their headers). The default keeps one request
        of realesr-animevideov3-x4 at about 0.1 GB and a few seconds on 2 CPU cores (see
        serving/README.md); raise it for larger images, lower it for heavier models.
      max_json_values: most values (array elements and object members) in a REST body, counted
        from its bytes before parsing.
      timeout_seconds: a request not answered by then gets DEADLINE_EXCEEDED (HTTP 504); if it
        has not started, it is dropped.
    """

    max_request_bytes: int = 32 * 1024 * 1024
    max_pixels: int = 131_072
    max_json_values: int = 1 << 20
    timeout_seconds: float = 300.0

    def __post_init__(self):
        for name in ("max_request_bytes", "max_pixels", "max_json_values"):
            if getattr(self, name) < 1:
                raise ValueError(f"Limits: `{name}` must be >= 1. Received: {name}={getattr(self, name)!r}")
        if self.timeout_seconds <= 0:
            raise ValueError(f"Limits: `timeout_seconds` must be > 0. Received: {self.timeout_seconds!r}")

    def deadline_error(self) -> ServingError:
        return ServingError(
            Code.DEADLINE_EXCEEDED,
            f"The request did not finish within {self.timeout_seconds:g} s (--request-timeout-seconds)",
        )
