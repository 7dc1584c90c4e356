"""The typed settings of a video upscaling job."""

from __future__ import annotations

import dataclasses

from sr_tf.config import ConfigBase
from sr_tf.defaults import TILE_PAD

# Encoders whose quality is set by a constant rate factor (`crf`), and their default.
CRF_CODECS = ("libx264", "libx265", "libvpx-vp9", "libsvtav1", "libaom-av1")
DEFAULT_CRF = 18


@dataclasses.dataclass(frozen=True)
class VideoConfig(ConfigBase):
    """How frames are upscaled and encoded.

    Attributes:
      codec: the FFmpeg encoder of the upscaled stream (`libx264`, `libx265`, `libvpx-vp9`, ...).
      crf: constant rate factor for the encoders in `CRF_CODECS` (lower is better; None: 18 there,
        the encoder's default elsewhere).
      preset: encoder speed preset (`medium`, `slow`, ...; None: the encoder's default).
      pix_fmt: output pixel format; None keeps the input's when the encoder takes it, else the
        closest one it takes with the same bit depth (10-bit stays 10-bit where the codec allows).
      segment_seconds: segments start on the first keyframe at least this long after the
        previous segment's start; each is encoded, written and resumed on its own.
      batch_size: frames per model call (frames of a video share a shape).
      tile: tile edge in input pixels (0: whole frames), as `sr-tf upscale --tile`.
      tile_pad: context pixels around each tile.
      outscale: final factor; the model output is resized (bicubic) when it differs from the
        model's scale. None: the model's scale.
    """

    codec: str = "libx264"
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    segment_seconds: float = 30.0
    batch_size: int = 4
    tile: int = 0
    tile_pad: int = TILE_PAD
    outscale: float | None = None

    def __post_init__(self):
        if not isinstance(self.codec, str) or not self.codec:
            raise ValueError(f"VideoConfig: `codec` must be an encoder name. Received: codec={self.codec!r}")
        if self.crf is not None and (isinstance(self.crf, bool) or not isinstance(self.crf, int) or self.crf < 0):
            raise ValueError(f"VideoConfig: `crf` must be an integer >= 0. Received: crf={self.crf!r}")
        if not self.segment_seconds > 0:
            raise ValueError(f"VideoConfig: `segment_seconds` must be > 0. Received: segment_seconds={self.segment_seconds!r}")
        for name, minimum in (("batch_size", 1), ("tile", 0), ("tile_pad", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"VideoConfig: `{name}` must be an integer >= {minimum}. Received: {name}={value!r}")
        if self.outscale is not None and not self.outscale > 0:
            raise ValueError(f"VideoConfig: `outscale` must be > 0. Received: outscale={self.outscale!r}")

    def encoder_options(self) -> dict[str, str]:
        """The options given to the encoder."""
        options = {}
        crf = self.crf if self.crf is not None else (DEFAULT_CRF if self.codec in CRF_CODECS else None)
        if crf is not None:
            if self.codec not in CRF_CODECS:
                raise ValueError(f"`crf` applies to {', '.join(CRF_CODECS)}. Received: codec={self.codec!r}")
            options["crf"] = str(crf)
            if self.codec == "libvpx-vp9":
                options["b"] = "0"  # constant quality mode needs a zero bitrate target
        if self.preset is not None:
            options["preset"] = self.preset
        if self.codec == "libx265":
            options["x265-params"] = "log-level=error"  # x265 prints a banner per encoder (per segment)
        return options

    def fingerprint(self) -> dict:
        """The settings that change the encoded segments (a resumed run must use the same)."""
        fields = ("codec", "crf", "preset", "pix_fmt", "segment_seconds", "tile", "tile_pad", "outscale")
        return {k: getattr(self, k) for k in fields}
