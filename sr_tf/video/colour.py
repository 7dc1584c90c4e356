"""Frames <-> RGB with the input's colour matrix and range, and the colour tags of the output.

Decoded frames become float RGB with the matrix (BT.601, BT.709, BT.2020, ...) and range (limited /
full) the input is tagged with, and the model's RGB goes back with the same ones; the output is
tagged the same, so colours do not shift. An untagged input is converted and tagged with what
players assume for its size (BT.709 from 1280 wide or over 576 lines, else BT.601; limited range
unless the pixel format is a full-range `yuvj*`), so a larger output is not shown differently.

The matrix and range are applied here, in float32 with exact rounding: swscale (in the FFmpeg 8
that PyAV 18 ships) is off by half a code on average in each direction, which shifted every
luma sample of a full-range round trip by one code. swscale only resamples chroma (4:2:0 <-> 4:4:4
at the frame's own bit depth), where no matrix is involved.
"""

from __future__ import annotations

import dataclasses

import av
import numpy as np

from sr_tf.video.errors import VideoError

# AVColorSpace value (libavutil/pixfmt.h) -> (Kr, Kb) of its Y'CbCr matrix.
_KR_KB = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 5: (0.299, 0.114), 6: (0.299, 0.114), 7: (0.212, 0.087),
          9: (0.2627, 0.0593)}
_MATRIX_NAMES = {0: "rgb", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020nc"}
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
    guess = BT709 if _is_hd(frame.width, frame.height) else SMPTE170M
    primaries = frame.color_primaries if frame.color_primaries not in (_UNSPECIFIED, _RESERVED) else guess
    trc = frame.color_trc if frame.color_trc not in (_UNSPECIFIED, _RESERVED) else guess
    if fmt.is_rgb:
        return Colour(RGB, FULL, primaries, trc)
    if fmt.name.startswith(("gray", "y")) and len(fmt.components) < 3:
        raise VideoError(f"pixel format {fmt.name} (gray) is not supported")
    matrix = frame.colorspace if frame.colorspace not in (_UNSPECIFIED, _RESERVED) else guess
    if matrix not in _KR_KB:
        raise VideoError(f"colour matrix {matrix} ({_MATRIX_NAMES.get(matrix, 'see AVColorSpace')}) is not supported")
    color_range = frame.color_range or (FULL if fmt.name.startswith("yuvj") else LIMITED)
    return Colour(matrix, color_range, primaries, trc)


def bit_depth(pix_fmt: str) -> int:
    return max(c.bits for c in av.VideoFormat(pix_fmt).components)


def _planar_444(bits: int) -> str:
    """The planar 4:4:4 format with `bits` per sample (16 when FFmpeg has none of that depth)."""
    if bits <= 8:
        return "yuv444p"
    try:
        return av.VideoFormat(f"yuv444p{bits}le").name
    except ValueError:
        return "yuv444p16le"


def _levels(bits: int, color_range: int) -> tuple[float, float, float, float]:
    """(luma offset, luma scale, chroma offset, chroma scale) in code values of `bits`."""
    if color_range == FULL:
        top = float(2**bits - 1)
        return 0.0, top, float(2 ** (bits - 1)), top
    unit = float(2 ** (bits - 8))
    return 16 * unit, 219 * unit, 128 * unit, 224 * unit


def _read_planes(frame: av.VideoFrame, bits: int) -> np.ndarray:
    dtype = np.uint8 if bits <= 8 else np.uint16
    out = np.empty((3, frame.height, frame.width), np.float32)
    for i, plane in enumerate(frame.planes[:3]):
        rows = np.frombuffer(plane, dtype).reshape(plane.height, -1)
        out[i] = rows[:, : plane.width]
    return out


def frame_to_rgb(frame: av.VideoFrame, colour: Colour) -> np.ndarray:
    """`[H, W, 3] float32` RGB in [0, 1] (8, 10 or more bits alike, no intermediate rounding)."""
    if colour.is_rgb:
        rgb = frame.reformat(format="gbrpf32le").to_ndarray()
        return np.clip(rgb, 0.0, 1.0, out=rgb)
    full = frame.reformat(format=_planar_444(bit_depth(frame.format.name)))  # chroma upsampled; no matrix
    bits = bit_depth(full.format.name)
    y, cb, cr = _read_planes(full, bits)
    y_off, y_scale, c_off, c_scale = _levels(bits, colour.range)
    y = (y - y_off) / y_scale
    cb = (cb - c_off) / c_scale
    cr = (cr - c_off) / c_scale
    kr, kb = _KR_KB[colour.matrix]
    kg = 1.0 - kr - kb
    r = y + 2 * (1 - kr) * cr
    b = y + 2 * (1 - kb) * cb
    g = (y - kr * r - kb * b) / kg
    rgb = np.stack([r, g, b], axis=-1)
    return np.clip(rgb, 0.0, 1.0, out=rgb)


def rgb_to_frame(rgb: np.ndarray, colour: Colour, pix_fmt: str) -> av.VideoFrame:
    """`[H, W, 3] float32` RGB (clipped to [0, 1]) -> a `pix_fmt` frame in `colour`, tagged with it.

    Each sample is rounded once, at the output's bit depth.
    """
    fmt = av.VideoFormat(pix_fmt)
    height, width, _ = rgb.shape
    if fmt.is_rgb or colour.is_rgb:
        if bit_depth(pix_fmt) > 8:
            frame = av.VideoFrame.from_ndarray(np.round(np.clip(rgb, 0, 1) * 65535).astype(np.uint16), format="rgb48le")
        else:
            frame = av.VideoFrame.from_ndarray(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8), format="rgb24")
        out = frame.reformat(format=pix_fmt)
    else:
        bits = bit_depth(_planar_444(bit_depth(pix_fmt)))
        kr, kb = _KR_KB[colour.matrix]
        kg = 1.0 - kr - kb
        x = np.clip(rgb, 0.0, 1.0)
        r, g, b = x[..., 0], x[..., 1], x[..., 2]
        y = kr * r + kg * g + kb * b
        cb = (b - y) * (0.5 / (1 - kb))
        cr = (r - y) * (0.5 / (1 - kr))
        y_off, y_scale, c_off, c_scale = _levels(bits, colour.range)
        full = av.VideoFrame(width, height, _planar_444(bits))
        dtype = np.uint8 if bits <= 8 else np.uint16
        top = 2**bits - 1
        for plane, values, offset, scale in zip(full.planes, (y, cb, cr), (y_off, c_off, c_off), (y_scale, c_scale, c_scale),
                                                strict=True):
            rows = np.frombuffer(plane, dtype).reshape(plane.height, -1)
            rows[:, :width] = np.clip(np.floor(values * scale + (offset + 0.5)), 0, top)
        full.colorspace, full.color_range = colour.matrix, colour.range
        out = full if pix_fmt == full.format.name else full.reformat(format=pix_fmt)  # chroma downsampling only
    out.colorspace, out.color_range = (RGB if fmt.is_rgb else colour.matrix), colour.range
    out.color_primaries, out.color_trc = colour.primaries, colour.trc
    return out
