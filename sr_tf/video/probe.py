"""What a video holds, read before any frame is upscaled: streams, timing, keyframes, colour.

`probe_video` opens the file with PyAV, checks it can be decoded, reads every packet's
timestamps without decoding (demuxing is cheap next to the model) and decodes the first frame
for its colour tags and display matrix. `plan_segments` cuts the video stream into segments
that start on keyframes, so each one decodes on its own (on another worker, or after a restart).
"""

from __future__ import annotations

import bisect
import dataclasses
import os
import struct
from fractions import Fraction

import av

from sr_tf.video.colour import Colour, resolve_colour
from sr_tf.video.errors import VideoError

# Extensions taken when a folder is given (outputs keep their input's container).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".m2ts", ".mts", ".nut", ".flv",
                  ".ogv", ".wmv", ".mpg", ".mpeg", ".3gp")

# Leading bytes of containers, to tell "truncated or corrupt X" from "not a video" when FFmpeg
# cannot open a file (it says "Invalid data" for both).
_SIGNATURES = ((4, b"ftyp", "MP4/MOV"), (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"), (0, b"RIFF", "AVI"),
               (0, b"OggS", "Ogg"), (0, b"FLV", "FLV"), (0, b"nut/", "NUT"))


@dataclasses.dataclass(frozen=True)
class Segment:
    """Frames with `start <= pts < end` of the video stream (None: open-ended), `frames` of them.

    `start` is a keyframe's pts, so decoding from the keyframe at or before it reaches every frame.
    """

    index: int
    start: int | None
    end: int | None
    frames: int


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """The facts about an input that the pipeline needs (all times in the video stream's time base).

    Attributes:
      path: the input's name (a path or URI), for messages.
      video_index: index of the upscaled stream among the container's streams.
      width, height: coded frame size in pixels; `pix_fmt` the decoder's pixel format.
      time_base: the video stream's time base.
      rate: its average (or guessed) frame rate, or None.
      frame_pts: sorted presentation timestamps of every video packet (one frame each).
      keyframes: sorted pts of the keyframe packets.
      durations: pts -> packet duration (0 when the container does not say).
      display_matrix: the 9-int32 display matrix (rotation / flips) or None.
      sample_aspect_ratio: the pixel aspect ratio, or None when square / unknown.
      colour: the colour matrix, range, primaries and transfer to convert with and tag.
      other_streams: (index, type, codec) of every stream copied as is.
    """

    path: str
    format_name: str
    video_index: int
    codec: str
    width: int
    height: int
    pix_fmt: str
    time_base: Fraction
    rate: Fraction | None
    frame_pts: tuple[int, ...]
    keyframes: tuple[int, ...]
    durations: dict
    display_matrix: tuple[int, ...] | None
    sample_aspect_ratio: Fraction | None
    colour: Colour
    other_streams: tuple[tuple[int, str, str], ...]

    @property
    def frames(self) -> int:
        return len(self.frame_pts)


def _sniff(source) -> str | None:
    """The container a file's first bytes announce, if any (`source`: a path or a seekable file)."""
    try:
        if hasattr(source, "read"):
            source.seek(0)
            head = source.read(16)
        else:
            with open(source, "rb") as f:
                head = f.read(16)
    except (OSError, ValueError):
        return None
    for offset, magic, name in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return name
    return None


def open_input(source, name: str | None = None):
    """`av.open` for reading, with FFmpeg's errors turned into one-line `VideoError`s.

    `source`: a path, or a callable returning a new binary file object (storage that is not a
    local file); `name` names it in messages.
    """
    name = name or str(getattr(source, "name", source))
    if callable(source):
        source = source()
    elif not os.path.isfile(source):
        raise VideoError(f"{name}: no such file")
    try:
        return av.open(source, "r")
    except av.FFmpegError as err:
        kind = _sniff(source)
        if kind:
            raise VideoError(f"{name}: truncated or corrupt {kind} file ({_reason(err)})") from None
        raise VideoError(f"{name}: not a video file ({_reason(err)})") from None


def _reason(err: Exception) -> str:
    return getattr(err, "strerror", None) or str(err)


def video_stream(container, name: str):
    """The stream to upscale: the first video stream that is not a cover picture."""
    streams = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
    if not streams:
        raise VideoError(f"{name}: has no video stream")
    stream = streams[0]
    if stream.codec_context is None:
        raise VideoError(f"{name}: unsupported video codec in stream #{stream.index} "
                         "(this FFmpeg build has no decoder for it)")
    return stream


def probe_video(source, name: str | None = None) -> VideoInfo:
    """Reads what `VideoInfo` lists from a path or an opener (see `open_input`).

    Raises:
      VideoError: one line for anything unusable (not a video, no video stream, no decoder,
        truncated, undecodable).
    """
    name = name or str(source)
    with open_input(source, name) as container:
        stream = video_stream(container, name)
        tb = stream.time_base
        pts, keys, durations = [], [], {}
        ends = []  # where each stream's packets end, in seconds (truncation check)
        try:
            for packet in container.demux():
                if packet.size == 0:
                    continue
                t = packet.pts if packet.pts is not None else packet.dts
                if t is not None:
                    ends.append(float((t + (packet.duration or 0)) * packet.time_base))
                if packet.stream.index != stream.index:
                    continue
                if t is None:
                    raise VideoError(f"{name}: video packets without timestamps")
                pts.append(t)
                durations[t] = packet.duration or 0
                if packet.is_keyframe:
                    keys.append(t)
        except av.FFmpegError as err:
            raise VideoError(f"{name}: corrupt or truncated after {len(pts)} frames ({_reason(err)})") from None
        if not pts:
            raise VideoError(f"{name}: the video stream holds no frames")
        if not keys:
            raise VideoError(f"{name}: the video stream has no keyframe")
        declared = container.duration / av.time_base if container.duration else None
        if declared and ends and max(ends) < declared - max(0.1, 0.02 * declared):
            raise VideoError(f"{name}: truncated: its packets end at {max(ends):.2f} s of the {declared:.2f} s "
                             "its header declares")
        first = _first_frame(container, stream, name)
        others = tuple((s.index, s.type, _codec_name(s)) for s in container.streams if s.index != stream.index)
        matrix = None
        for side in first.side_data:
            if side.type == av.sidedata.sidedata.Type.DISPLAYMATRIX:
                matrix = struct.unpack("=9i", bytes(side)[:36])  # FFmpeg's native-endian int32[9]
        sar = stream.codec_context.sample_aspect_ratio
        return VideoInfo(
            path=name, format_name=container.format.name, video_index=stream.index,
            codec=stream.codec_context.name, width=first.width, height=first.height, pix_fmt=first.format.name,
            time_base=tb, rate=stream.average_rate or stream.guessed_rate,
            frame_pts=tuple(sorted(pts)), keyframes=tuple(sorted(keys)), durations=durations,
            display_matrix=matrix if matrix and matrix != _IDENTITY else None,
            sample_aspect_ratio=sar if sar and sar != 1 else None,
            colour=resolve_colour(first), other_streams=others,
        )


_IDENTITY = (65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30)


def _codec_name(stream) -> str:
    ctx = stream.codec_context
    return ctx.name if ctx is not None else "unknown"


def _first_frame(container, stream, name: str):
    container.seek(0, stream=stream)
    try:
        for frame in container.decode(stream):
            return frame
    except av.FFmpegError as err:
        raise VideoError(f"{name}: the video cannot be decoded ({_reason(err)})") from None
    raise VideoError(f"{name}: no video frame could be decoded")


def segment_pts(info: VideoInfo, segment: Segment) -> tuple[int, ...]:
    """The sorted pts of the segment's frames."""
    lo = 0 if segment.start is None else bisect.bisect_left(info.frame_pts, segment.start)
    hi = len(info.frame_pts) if segment.end is None else bisect.bisect_left(info.frame_pts, segment.end)
    return info.frame_pts[lo:hi]


def plan_segments(info: VideoInfo, seconds: float) -> list[Segment]:
    """Segments of at least `seconds` (the last may be shorter), each starting on a keyframe.

    A new segment starts at the first keyframe `seconds` or more after the current one starts.
    Frames are assigned by presentation time, so frames that an open GOP decodes after a
    keyframe but shows before it stay in the previous segment.
    """
    if seconds <= 0:
        raise ValueError(f"segment seconds must be positive. Received: seconds={seconds}")
    step = Fraction(seconds) / info.time_base  # in stream ticks
    starts: list[int | None] = [None]
    last = info.frame_pts[0]
    for key in info.keyframes:
        if key - last >= step:
            starts.append(key)
            last = key
    ends = [*starts[1:], None]
    return [Segment(i, start, end, len(segment_pts(info, Segment(i, start, end, 0))))
            for i, (start, end) in enumerate(zip(starts, ends, strict=True))]
