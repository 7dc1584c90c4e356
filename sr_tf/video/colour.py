"""Frames <-> RGB with the input's colour matrix and range, and the colour tags of the output.

Decoded frames become float RGB through swscale with the matrix (BT.601, BT.709, ...) and range
(limited / full) the input is tagged with; the model's RGB goes back through swscale with the same
matrix and range, and the output is tagged the same, so colours do not shift. An untagged input
is converted and tagged with what players assume for its size (BT.709 from 1280 wide or over 576
lines, else BT.601; limited range unless the pixel format is a full-range `yuvj*`), so a larger
output is not shown with different colours than its smaller input.
"""

from __future__ import annotations

import dataclasses

import av
import numpy as np

from sr_tf.video.errors import VideoError

# AVColorSpace values (libavutil/pixfmt.h) -> swscale's matrix names.
_SWS_MATRIX = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "ITU601", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}
_MATRIX_NAMES = {0: "rgb", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020nc",
                 10: "bt2020c"}
_UNSPECIFIED, _RESERVED = 2, 3
RGB, BT709, SMPTE170M = 0, 1, 6
LIMITED, FULL = 1, 2


@dataclasses.dataclass(frozen=True)
class Colour:
    """How a video's pixels map to RGB, as FFmpeg's enum values (`AVColorSpace`, `AVColorRange`,
    `AVColorPrimaries`, `AVColorTransferCharacteristic`); never "unspecified" once resolved."""

    matrix: int
    range: int
    primaries: int
    trc: int

    @property
    def is_rgb(self) -> bool:
        return self.matrix == RGB

    def describe(self) -> str:
        if self.is_rgb:
            return "rgb"
        return f"{_MATRIX_NAMES.get(self.matrix, self.matrix)}/{'full' if self.range == FULL else 'limited'}"


def _is_hd(width: int, height: int) -> bool:
    return width >= 1280 or height > 576


def resolve_colour(frame: av.VideoFrame) -> Colour:
    """The colour of a decoded frame, unspecified tags replaced by what players assume."""
    fmt = frame.format
    hd = _is_hd(frame.width, frame.height)
    guess = BT709 if hd else SMPTE170M
    primaries = frame.color_primaries if frame.color_primaries not in (_UNSPECIFIED, _RESERVED) else guess
    trc = frame.color_trc if frame.color_trc not in (_UNSPECIFIED, _RESERVED) else guess
    if fmt.is_rgb:
        return Colour(RGB, FULL, primaries, trc)
    matrix = frame.colorspace if frame.colorspace not in (_UNSPECIFIED, _RESERVED) else guess
    if matrix not in _SWS_MATRIX:
        raise VideoError(f"colour matrix {matrix} ({_MATRIX_NAMES.get(matrix, 'see AVColorSpace')}) is not supported")
    color_range = frame.color_range or (FULL if fmt.name.startswith("yuvj") else LIMITED)
    return Colour(matrix, color_range, primaries, trc)


def frame_to_rgb(frame: av.VideoFrame, colour: Colour) -> np.ndarray:
    """`[H, W, 3] float32` RGB in [0, 1] (8, 10 or more bits alike, no intermediate rounding)."""
    if colour.is_rgb:
        rgb = frame.reformat(format="gbrpf32le").to_ndarray()
    else:
        rgb = frame.reformat(format="gbrpf32le", src_colorspace=_SWS_MATRIX[colour.matrix],
                             src_color_range=colour.range).to_ndarray()
    return np.clip(rgb, 0.0, 1.0, out=rgb)


def rgb_to_frame(rgb: np.ndarray, colour: Colour, pix_fmt: str) -> av.VideoFrame:
    """`[H, W, 3] float32` RGB in [0, 1] -> a `pix_fmt` frame in `colour`, tagged with it.

    The RGB goes through 16 bits per channel, so 8- and 10-bit outputs are rounded once.
    """
    q = np.clip(rgb, 0.0, 1.0)
    q *= 65535.0
    q += 0.5
    frame = av.VideoFrame.from_ndarray(q.astype(np.uint16), format="rgb48le")
    if colour.is_rgb or av.VideoFormat(pix_fmt).is_rgb:
        out = frame.reformat(format=pix_fmt)
    else:
        out = frame.reformat(format=pix_fmt, dst_colorspace=_SWS_MATRIX[colour.matrix], dst_color_range=colour.range)
    out.colorspace, out.color_range = colour.matrix, colour.range
    out.color_primaries, out.color_trc = colour.primaries, colour.trc
    return out
