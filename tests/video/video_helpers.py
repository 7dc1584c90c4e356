"""Helpers of the video tests: short clips made with PyAV, and reading videos back."""

from __future__ import annotations

import struct
from fractions import Fraction

import av
import numpy as np

SCALE = 4  # of the tiny test models (conftest.py)
SUBTITLE_CODECS = {"mp4": "mov_text", "mov": "mov_text", "mkv": "subrip"}
SUBTITLES = ("hello", "world")


def pattern(i: int, height: int, width: int, seed: int = 0, deep: bool = False) -> np.ndarray:
    """Frame i of a moving colour pattern with some texture: `[H, W, 3]` uint8, or uint16 with `deep`
    (values that 8 bits cannot hold)."""
    rng = np.random.default_rng(seed + i)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 0.5 + 0.4 * np.sin((x + 2 * i) / 5.0)
    g = 0.5 + 0.4 * np.cos((y - i) / 4.0)
    b = 0.5 + 0.4 * np.sin((x + y + 3 * i) / 7.0)
    image = np.clip(np.stack([r, g, b], -1) + rng.normal(0, 0.025, (height, width, 3)), 0, 1)
    if deep:
        return np.round(image * 65535).astype(np.uint16)
    return np.round(image * 255).astype(np.uint8)


def make_clip(
    path,
    size: tuple[int, int] = (34, 26),
    frames: int = 48,
    fps: int = 24,
    keyint: int = 6,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    colorspace: int | None = 1,
    color_range: int | None = 1,
    rotation: int | None = 90,
    sar: Fraction | None = None,
    audio: bool = True,
    subtitles: bool = True,
    deep: bool = False,
    chapters: bool = False,
    attachment: bool = False,
    seed: int = 0,
    direct_yuv: bool = False,
) -> list[np.ndarray]:
    """Writes a clip with a keyframe every `keyint` frames, an AAC track and a subtitle stream.

    `pts` (in `time_base`) makes a variable frame rate; `size` is (width, height). Returns the
    RGB frames that were encoded. `direct_yuv` (planar 4:4:4 only) writes the samples from the textbook
    Y'CbCr equations instead of swscale, whose SIMD paths differ between CPUs; the pattern is kept inside
    [0.02, 0.98] there, so every sample is a colour that RGB can hold (no clipping on the way back).
    """
    import os

    path = str(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    ext = path.rsplit(".", 1)[-1]
    width, height = size
    time_base = time_base or Fraction(1, fps * 512)
    pts = pts if pts is not None else [i * int(1 / (fps * time_base)) for i in range(frames)]
    out = av.open(path, "w")
    out.metadata["title"] = "sr-tf test clip"
    if chapters:
        out.set_chapters([{"id": 1, "start": 0, "end": 500, "time_base": Fraction(1, 1000), "metadata": {"title": "one"}},
                          {"id": 2, "start": 500, "end": 1000, "time_base": Fraction(1, 1000),
                           "metadata": {"title": "two"}}])
    video = out.add_stream(codec, rate=fps)
    video.width, video.height, video.pix_fmt = width, height, pix_fmt
    if attachment:  # e.g. a subtitle font, as Matroska files carry them
        out.add_attachment("font.ttf", "font/ttf", b"not really a font" * 8)
    video.time_base = time_base
    ctx = video.codec_context
    ctx.time_base = time_base
    if colorspace is not None:  # with the primaries and transfer that go with the matrix
        ctx.colorspace = colorspace
        ctx.color_primaries, ctx.color_trc = {1: (1, 1), 5: (5, 6), 6: (6, 6)}[colorspace]
    if color_range is not None:
        ctx.color_range = color_range
    if sar is not None:
        ctx.sample_aspect_ratio = sar
    if rotation:
        video.set_display_rotation(rotation)
    ctx.options = {"g": str(keyint), "keyint_min": str(keyint), "sc_threshold": "0"} if codec == "libx264" \
        else {"g": str(keyint)}
    if codec == "libx265":
        ctx.options = {"x265-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0:log-level=error"}
    sound = out.add_stream("aac", rate=48000) if audio else None
    sub = None
    if subtitles:
        sub = out.add_mux_stream(SUBTITLE_CODECS[ext])
        sub.time_base = Fraction(1, 1000)
    images = []
    for i, t in enumerate(pts):
        image = pattern(i, height, width, seed, deep)
        images.append(image)
        if direct_yuv:
            frame = yuv444_frame(image, pix_fmt, colorspace or 6, color_range or 1)
        else:
            frame = av.VideoFrame.from_ndarray(image, format="rgb48le" if deep else "rgb24").reformat(
                format=pix_fmt, dst_colorspace={1: "ITU709", 5: "ITU601", 6: "ITU601"}.get(colorspace or 6, "ITU601"),
                dst_color_range=color_range or 1)
        frame.pts, frame.time_base = t, time_base
        out.mux(video.encode(frame))
    out.mux(video.encode(None))
    seconds = float((pts[-1] + pts[1] - pts[0]) * time_base) if len(pts) > 1 else 0.5
    if sound is not None:
        n = int(48000 * seconds)
        tone = np.sin(2 * np.pi * 440 * np.arange(n) / 48000).astype(np.float32)[None]
        for start in range(0, n, 1024):
            chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start : start + 1024]), format="fltp",
                                               layout="mono")
            chunk.sample_rate, chunk.pts = 48000, start
            out.mux(sound.encode(chunk))
        out.mux(sound.encode(None))
    if sub is not None:
        for k, text in enumerate(SUBTITLES):
            data = text.encode()
            if SUBTITLE_CODECS[ext] == "mov_text":
                data = struct.pack(">H", len(data)) + data
            packet = av.Packet(data)
            packet.stream = sub
            packet.pts = packet.dts = int(k * seconds * 500)
            packet.duration = int(seconds * 400)
            packet.time_base = sub.time_base
            out.mux(packet)
    out.close()
    return images


def decoded_frames(path, fmt: str = "rgb24") -> tuple[list[np.ndarray], list[float]]:
    """Every frame of the first video stream as RGB (using the stream's colour tags) and its time."""
    from sr_tf.video.colour import frame_to_rgb, resolve_colour

    images, times = [], []
    with av.open(str(path)) as container:
        colour = None
        for frame in container.decode(video=0):
            colour = colour or resolve_colour(frame)
            rgb = frame_to_rgb(frame, colour)
            images.append(np.round(rgb * 255).astype(np.uint8) if fmt == "rgb24" else rgb)
            times.append(float(frame.pts * frame.time_base))
    return images, times


def stream_packets(path) -> dict[int, list[tuple]]:
    """Per stream index: (pts seconds, duration seconds, payload bytes) of every packet."""
    out: dict[int, list[tuple]] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size == 0:
                continue
            tb = packet.time_base
            out.setdefault(packet.stream.index, []).append(
                (float(packet.pts * tb), float((packet.duration or 0) * tb), bytes(packet)))
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def yuv444_frame(image: np.ndarray, pix_fmt: str, colorspace: int, color_range: int) -> av.VideoFrame:
    """A planar 4:4:4 frame of `image` (uint8 or uint16 RGB) by the Y'CbCr equations of ITU-R BT.601 / BT.709
    in float64, with the range's levels (limited: 16-235 / 16-240 at 8 bits, scaled by 2^(bits-8));
    RGB is squeezed into [0.02, 0.98] first."""
    kr, kb = {1: (0.2126, 0.0722), 5: (0.299, 0.114), 6: (0.299, 0.114)}[colorspace]
    rgb = 0.02 + 0.96 * image.astype(np.float64) / np.iinfo(image.dtype).max
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = kr * r + (1 - kr - kb) * g + kb * b
    pb, pr = (b - y) / (2 * (1 - kb)), (r - y) / (2 * (1 - kr))
    bits = max(c.bits for c in av.VideoFormat(pix_fmt).components)
    if color_range == 2:
        top = 2**bits - 1
        samples = (y * top, pb * top + 2 ** (bits - 1), pr * top + 2 ** (bits - 1))
    else:
        unit = 2 ** (bits - 8)
        samples = (unit * (16 + 219 * y), unit * (128 + 224 * pb), unit * (128 + 224 * pr))
    frame = av.VideoFrame(image.shape[1], image.shape[0], pix_fmt)
    dtype = np.uint16 if bits > 8 else np.uint8
    for plane, values in zip(frame.planes, samples, strict=True):
        rows = np.frombuffer(plane, dtype).reshape(plane.height, -1)
        rows[:, : plane.width] = np.round(values)
    frame.colorspace, frame.color_range = colorspace, color_range
    return frame


def frame_planes(frame: av.VideoFrame) -> list[np.ndarray]:
    """The frame's planes as integer arrays (8- or 16-bit samples), padding removed."""
    dtype = np.uint16 if max(c.bits for c in frame.format.components) > 8 else np.uint8
    out = []
    for plane in frame.planes:
        rows = np.frombuffer(plane, dtype).reshape(plane.height, -1)
        out.append(rows[:, : plane.width].astype(np.int64))
    return out


def decoded_planes(path) -> list[list[np.ndarray]]:
    with av.open(str(path)) as container:
        return [frame_planes(f) for f in container.decode(video=0)]


def video_facts(path) -> dict:
    """What the tests compare between an input and its output, besides pixels."""
    from sr_tf.video import probe_video

    info = probe_video(str(path))
    with av.open(str(path)) as container:
        durations = {s.index: (float(s.duration * s.time_base) if s.duration else None) for s in container.streams}
        video = container.streams.video[0]
        first = next(container.decode(video=0))
        return {
            "size": (info.width, info.height), "frames": info.frames, "codec": info.codec,
            "pix_fmt": first.format.name, "matrix": info.display_matrix, "sar": info.sample_aspect_ratio,
            "colour": (first.colorspace, first.color_range, first.color_primaries, first.color_trc),
            "duration": container.duration, "stream_durations": durations,
            "streams": [(s.type, s.codec_context.name if s.codec_context else None, s.metadata.get("filename"))
                        for s in container.streams],
            "time_base": video.time_base, "title": container.metadata.get("title"),
            "chapters": [(c["start"] * c["time_base"], c["metadata"].get("title")) for c in container.chapters()],
        }


def subtitle_cues(path) -> list[tuple[float, float, bytes]]:
    """(start s, duration s, text) of every subtitle packet that holds text."""
    cues = []
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams.subtitles[0]):
            data = bytes(packet)
            if packet.size and len(data) > 2:  # MP4's 2-byte empty samples fill gaps between cues
                cues.append((float(packet.pts * packet.time_base), float(packet.duration * packet.time_base), data))
    return cues
