"""Upscaling one segment of a video into a file of its own.

Three stages overlap: a decoder thread demuxes, decodes and converts frames to float RGB
(`[N, H, W, 3]` batches of `batch_size`), a model thread upscales each batch, and the calling
thread converts the upscaled RGB back to the output pixel format, encodes and muxes it.
PyAV releases the GIL inside FFmpeg and TensorFlow releases it inside its kernels, so the three
run in parallel; queues of two batches bound the memory in flight.

Segments are written in NUT, FFmpeg's own container, because it keeps every timestamp exactly
in any time base (MP4 edit lists round a segment's start to the movie timescale; Matroska
rounds to milliseconds). The encoder gets the input's time base and each frame its input pts, so
timestamps, variable frame rate included, come through unchanged.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections.abc import Callable
from typing import Protocol

import av
import numpy as np

from sr_tf.defaults import TILE_PAD
from sr_tf.video.colour import frame_to_rgb, rgb_to_frame
from sr_tf.video.config import VideoConfig
from sr_tf.video.errors import VideoError
from sr_tf.video.probe import Segment, VideoInfo, open_input

SEGMENT_FORMAT = "nut"
SEGMENT_SUFFIX = ".nut"
_DONE = object()


class FrameUpscaler(Protocol):
    """What runs the model: `sr_tf.inference.Upscaler`, or an adapter with the same two members."""

    scale: int

    def upscale_batch(self, batch: np.ndarray, tile: int = 0, tile_pad: int = TILE_PAD) -> np.ndarray:
        """`[N, H, W, 3] float32 [0, 1] -> [N, sH, sW, 3] float32`."""


def output_size(info: VideoInfo, scale: int, outscale: float | None) -> tuple[int, int]:
    """(width, height) of the output frames."""
    factor = scale if outscale is None else outscale
    return max(1, round(info.width * factor)), max(1, round(info.height * factor))


def choose_pix_fmt(codec: str, input_pix_fmt: str, requested: str | None) -> str:
    """The output pixel format: `requested`, else the input's if `codec` takes it, else the one it
    takes with the input's chroma subsampling and bit depth (or the nearest: 4:2:0, then its first).

    Raises:
      VideoError: `codec` is not an encoder of this FFmpeg build, or does not take `requested`.
    """
    try:
        formats = [f.name for f in (av.codec.Codec(codec, "w").video_formats or ())]
    except Exception:  # av raises UnknownCodecError; the message says what to do
        raise VideoError(f"`codec` {codec!r} is not a video encoder of this FFmpeg build") from None
    if requested is not None:
        if formats and requested not in formats:
            raise VideoError(f"`pix_fmt` {requested} is not taken by {codec}; it takes {', '.join(formats)}")
        return requested
    if not formats or input_pix_fmt in formats:
        return input_pix_fmt
    source = av.VideoFormat(input_pix_fmt)
    bits = max(c.bits for c in source.components)
    if source.is_rgb:
        chroma = "444"
    else:
        chroma = {(2, 2): "420", (2, 4): "422", (4, 4): "444"}.get(
            (source.chroma_width(4), source.chroma_height(4)), "420")
    depth = "" if bits <= 8 else f"{min(bits, 12)}le"
    for candidate in (f"yuv{chroma}p{depth}", f"yuv420p{depth}", f"yuv{chroma}p", "yuv420p"):
        if candidate in formats:
            return candidate
    return formats[0]


def check_encoder(config: VideoConfig, info: VideoInfo, size: tuple[int, int], pix_fmt: str) -> None:
    """Opens (and closes) the encoder as it will be used, so bad settings fail before any work."""
    width, height = size
    fmt = av.VideoFormat(pix_fmt)
    if (fmt.chroma_width(2) < 2 and width % 2) or (fmt.chroma_height(2) < 2 and height % 2):
        raise VideoError(f"the output would be {width}x{height}, and {pix_fmt} needs even dimensions; "
                         "use another `scale` or a 4:4:4 `pix_fmt` such as yuv444p")
    try:
        ctx = _encoder_context(config, info, size, pix_fmt)
        ctx.open()
    except (av.FFmpegError, ValueError) as err:
        raise VideoError(f"{config.codec} cannot encode {width}x{height} {pix_fmt} with options "
                         f"{config.encoder_options()}: {err}") from None


def _encoder_context(config: VideoConfig, info: VideoInfo, size: tuple[int, int], pix_fmt: str,
                     ctx=None) -> av.VideoCodecContext:
    ctx = ctx if ctx is not None else av.CodecContext.create(config.codec, "w")
    ctx.width, ctx.height = size
    ctx.pix_fmt = pix_fmt
    ctx.time_base = info.time_base
    if info.rate:
        ctx.framerate = info.rate
    colour = info.colour
    ctx.colorspace, ctx.color_range = colour.matrix, colour.range
    ctx.color_primaries, ctx.color_trc = colour.primaries, colour.trc
    if info.sample_aspect_ratio:
        ctx.sample_aspect_ratio = info.sample_aspect_ratio
    ctx.options = config.encoder_options()
    return ctx


class _Stage(threading.Thread):
    """A thread that runs `fn` and keeps its exception for the caller."""

    def __init__(self, fn: Callable[[], None], name: str):
        super().__init__(name=name, daemon=True)
        self._fn, self.error = fn, None

    def run(self):
        try:
            self._fn()
        except BaseException as err:  # handed to the calling thread, which re-raises it
            self.error = err


def encode_segment(
    source,
    info: VideoInfo,
    segment: Segment,
    upscaler: FrameUpscaler,
    config: VideoConfig,
    dest: str | os.PathLike,
    on_frames: Callable[[int], None] | None = None,
) -> int:
    """Upscales `segment` of `source` into `dest` (written atomically); returns the frames written.

    Args:
      source: the input path, or a callable returning a new binary file object for it (for
        storage that is not a local file); the decoder opens its own handle.
      dest: the finished segment's path; a temporary sibling is renamed to it at the end.
      on_frames: called with the number of frames each time a batch has been encoded.
    """
    size = output_size(info, upscaler.scale, config.outscale)
    pix_fmt = choose_pix_fmt(config.codec, info.pix_fmt, config.pix_fmt)
    decoded: queue.Queue = queue.Queue(maxsize=2)
    upscaled: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    dest = os.fspath(dest)
    tmp = f"{dest}.tmp"
    written = [0]

    def decode():
        try:
            _decode(source, info, segment, config.batch_size, decoded, stop)
        finally:
            decoded.put(_DONE)

    def run_model():
        try:
            while not stop.is_set():
                item = decoded.get()
                if item is _DONE:
                    break
                pts, batch = item
                out = upscaler.upscale_batch(batch, config.tile, config.tile_pad)
                if out.shape[2] != size[0] or out.shape[1] != size[1]:
                    from sr_tf.inference import resize_float  # bicubic, as `sr-tf upscale --scale`

                    out = resize_float(out, size[1], size[0])
                upscaled.put((pts, out))
        finally:
            upscaled.put(_DONE)

    # Encoding stays on the calling thread; the decoder and the model run beside it.
    decoder, model = _Stage(decode, "sr-tf-decode"), _Stage(run_model, "sr-tf-model")
    decoder.start()
    model.start()
    try:
        _encode(tmp, info, config, size, pix_fmt, upscaled, written, on_frames)
    finally:
        stop.set()
        while decoder.is_alive() or model.is_alive():  # unblock stages waiting on a full queue
            for q in (decoded, upscaled):
                try:
                    q.get(timeout=0.05)
                except queue.Empty:
                    pass
        decoder.join()
        model.join()
        if sys.exc_info()[0] is not None and os.path.exists(tmp):
            os.unlink(tmp)
    for stage in (decoder, model):
        if stage.error is not None:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise stage.error
    if written[0] != segment.frames:
        os.unlink(tmp)
        raise VideoError(f"{info.path}: segment {segment.index} decoded {written[0]} frames where the "
                         f"container lists {segment.frames} (corrupt or truncated video)")
    os.replace(tmp, dest)
    return written[0]


class _SeekMissed(Exception):
    """The container's seek landed after the segment's first keyframe."""


def _decode(source, info: VideoInfo, segment: Segment, batch_size: int, out: queue.Queue,
            stop: threading.Event) -> None:
    """Puts `(pts list, [N, H, W, 3] float32)` batches of the segment's frames into `out`."""
    for from_start in (False, True):
        with open_input(source, info.path) as container:
            pts, frames = [], []
            try:
                for frame in _segment_frames(container, info, segment, from_start):
                    pts.append(frame.pts)
                    frames.append(frame_to_rgb(frame, info.colour))
                    if len(frames) == batch_size:
                        out.put((pts, np.stack(frames)))
                        pts, frames = [], []
                    if stop.is_set():
                        return
            except _SeekMissed:
                continue  # decode from the beginning instead (slower, always right)
            except av.FFmpegError as err:
                raise VideoError(f"{info.path}: decoding failed in segment {segment.index}: {err}") from None
            if frames:
                out.put((pts, np.stack(frames)))
            return


def _segment_frames(container, info: VideoInfo, segment: Segment, from_start: bool):
    """The decoded frames with `segment.start <= pts < segment.end`, in presentation order."""
    stream = container.streams[info.video_index]
    stream.thread_type = "AUTO"
    if segment.start is not None and not from_start:
        container.seek(segment.start, stream=stream, backward=True, any_frame=False)
    first = True
    for packet in container.demux(stream):
        for frame in packet.decode():
            t = frame.pts
            if t is None:
                raise VideoError(f"{info.path}: a decoded frame has no timestamp")
            if segment.start is not None and t < segment.start:
                continue  # before the segment, or an open GOP's leading frame owned by the previous one
            if first and segment.start is not None and t != segment.start and not from_start:
                raise _SeekMissed()
            first = False
            if segment.end is not None and t >= segment.end:
                return
            if frame.width != info.width or frame.height != info.height:
                raise VideoError(f"{info.path}: the frame size changes from {info.width}x{info.height} to "
                                 f"{frame.width}x{frame.height} at {float(t * info.time_base):.3f} s; not supported")
            yield frame


def _encode(path: str, info: VideoInfo, config: VideoConfig, size: tuple[int, int], pix_fmt: str,
            batches: queue.Queue, written: list, on_frames) -> None:
    with av.open(path, "w", format=SEGMENT_FORMAT) as container:
        stream = container.add_stream(config.codec, rate=info.rate)
        stream.time_base = info.time_base
        _encoder_context(config, info, size, pix_fmt, stream.codec_context)
        while True:
            item = batches.get()
            if item is _DONE:
                break
            pts, rgb = item
            for t, image in zip(pts, rgb, strict=True):
                frame = rgb_to_frame(image, info.colour, pix_fmt)
                frame.pts, frame.time_base = t, info.time_base
                container.mux(stream.encode(frame))
            written[0] += len(pts)
            if on_frames:
                on_frames(len(pts))
        container.mux(stream.encode(None))
