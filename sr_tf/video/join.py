"""Joining encoded segments with the input's other streams into the output file, without re-encoding.

The upscaled stream's packets are copied from the segment files in order; every other stream
(audio, subtitles, data, attachments) is copied packet by packet from the input, with its
metadata and disposition, and so are the container's metadata and chapters. The two packet
sequences are merged by decode time so the muxer interleaves them without buffering a stream.

Each segment starts with a fresh encoder, whose decode timestamps begin below its first frame and
would overlap the previous segment's. Decode timestamps are therefore rebuilt for the whole stream
as one encoder would have set them (`decode_timestamps`); presentation timestamps never change.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterator
from fractions import Fraction

import av

from sr_tf.video.errors import VideoError
from sr_tf.video.probe import Segment, VideoInfo, open_input, segment_pts


def _copy_stream(out, template, info: VideoInfo, opaque: bool | None = None):
    try:
        stream = out.add_stream_from_template(template, opaque=opaque)
    except ValueError as err:  # the container cannot hold this codec
        raise VideoError(f"stream #{template.index} ({template.type}, {_codec(template)}) cannot be stored "
                         f"in {out.format.name}: {err}; use the input's container") from None
    return stream


def _codec(stream) -> str:
    return stream.codec_context.name if stream.codec_context is not None else "unknown codec"


def check_streams(source, info: VideoInfo, target: str | os.PathLike, codec: str) -> None:
    """Fails early when the target's container cannot hold the upscaled codec or a copied stream.

    Nothing is written: an output container creates its file only when its header is written.
    """
    with open_input(source, info.path) as inp, _open_output(target) as out:
        for s in inp.streams:
            if s.index != info.video_index:
                _copy_stream(out, s, info)
                continue
            try:
                out.add_stream(codec)
            except ValueError as err:
                raise VideoError(f"{codec} cannot be stored in {out.format.name}: {err}") from None


# FFmpeg's MP4/MOV muxer (movenc) names for the containers it writes.
_MOVENC_FORMATS = frozenset({"mp4", "mov", "ipod", "3gp", "3g2", "psp", "f4v"})


def _open_output(target: str | os.PathLike):
    try:
        out = av.open(os.fspath(target), "w")
    except ValueError as err:  # FFmpeg knows no container for the extension
        raise VideoError(f"{target}: {err}; name the output .mp4, .mkv, .mov or .webm") from None
    if out.format.name in _MOVENC_FORMATS:
        # With B-frames the first decode timestamps are negative. movenc then takes the track's start as
        # the first packet's dts plus the smallest composition offset (pts - dts) among the packets with
        # dts <= 0, even when that offset is another packet's (this rule matches its output for all 5040
        # decode orders of 8 frames). For an order such as [0, 1024, 512, ...] (I, P, B, which libx265
        # picks in some runs, by thread timing) the start falls 512 ticks before the first frame, and the
        # edit list rounds the track down in the 1/1000 s movie timescale: 333 ms for 1/3 s, 4 ticks of
        # 1/12288 s short. With signed composition offsets (ctts version 1) the track's decode times start
        # at the first frame, its edit list has no offset to round, and the duration is exact.
        out.options["movflags"] = "negative_cts_offsets"
    return out


def join_segments(source, info: VideoInfo, segments: list[Segment], segment_paths: list[str],
                  target: str | os.PathLike) -> None:
    """Writes `target` from the encoded `segments` (files `segment_paths`) and the other streams of `info.path`.

    `source`: the input, a path or an opener (see `probe.open_input`).
    """
    with open_input(source, info.path) as inp, _open_output(target) as out:
        out.metadata.update(inp.metadata)
        first = av.open(segment_paths[0])
        mapping = {}
        for s in inp.streams:
            if s.index == info.video_index:
                o = _copy_stream(out, first.streams.video[0], info, opaque=True)
                o.time_base = info.time_base
                ctx = o.codec_context
                colour = info.colour
                ctx.colorspace, ctx.color_range = colour.matrix, colour.range
                ctx.color_primaries, ctx.color_trc = colour.primaries, colour.trc
                if info.sample_aspect_ratio:
                    ctx.sample_aspect_ratio = info.sample_aspect_ratio
                if info.display_matrix:
                    o.set_display_matrix(info.display_matrix)
            else:
                o = _copy_stream(out, s, info)
            o.metadata.update(s.metadata)
            o.disposition = s.disposition
            mapping[s.index] = o
        extradata = first.streams.video[0].codec_context.extradata
        first.close()
        if inp.chapters():
            out.set_chapters(inp.chapters())
        out.start_encoding()  # fixes every output stream's time base
        video = mapping[info.video_index]
        others = [s for s in inp.streams if s.index != info.video_index]
        merged = heapq.merge(_video_packets(segment_paths, segments, info, video, extradata),
                             _other_packets(inp, others, mapping), key=lambda item: item[0])
        for _, packet in merged:
            out.mux(packet)


def _rescale(value: int, src: Fraction, dst: Fraction) -> int:
    """`value` ticks of `src` in ticks of `dst`, rounded half up (exact when `dst` divides `src`)."""
    x = Fraction(value) * src / dst
    return int(x + Fraction(1, 2)) if x >= 0 else -int(-x + Fraction(1, 2))


def decode_timestamps(pts: list[int]) -> list[int]:
    """Decode timestamps for packets in decode order with presentation timestamps `pts`.

    `dts[i] = sorted(pts)[i - D]`, with the smallest delay D that keeps every `dts <= pts`, and the
    first D values spaced below the first frame: what one encoder over the whole video would
    give. MP4 stores sample durations as differences of decode timestamps, so they must follow
    the frames' real spacing across segment joins, not merely increase.
    """
    order = sorted(pts)
    rank = {t: r for r, t in enumerate(order)}
    delay = max(0, max(i - rank[t] for i, t in enumerate(pts)))
    if delay == 0:
        return list(pts)
    step = max(1, (order[min(delay, len(order) - 1)] - order[0]) // delay)
    return [order[0] - (delay - i) * step if i < delay else order[i - delay] for i in range(len(pts))]


def _video_packets(paths: list[str], segments: list[Segment], info: VideoInfo, stream, extradata) -> Iterator[tuple[Fraction, av.Packet]]:
    out_tb = stream.time_base

    def segment_packets():
        for segment, path in zip(segments, paths, strict=True):
            with av.open(path) as seg:
                s = seg.streams.video[0]
                if s.codec_context.extradata != extradata:
                    raise VideoError(f"segment {segment.index} ({path}) was encoded with other settings than "
                                     "segment 0; delete the parts folder and run again")
                packets = [p for p in seg.demux(s) if p.size]
                found = [_rescale(p.pts, s.time_base, info.time_base) for p in packets]
                # a muxer may shift a file's timestamps to keep decode times >= 0: undo that shift
                want = segment_pts(info, segment)
                shift = min(found) - want[0] if found and want else 0
                if sorted(t - shift for t in found) != list(want):
                    raise VideoError(f"segment {segment.index} ({path}) does not hold the frames it should; "
                                     "delete the parts folder and run again")
                for t, packet in zip(found, packets, strict=True):
                    yield t - shift, packet

    pts = [_rescale(t, info.time_base, out_tb) for t, _ in segment_packets()]  # a pass over timestamps only
    if len(set(pts)) != len(pts):
        raise VideoError(f"two frames fall on the same tick of the output's time base {out_tb}; "
                         "use a container with finer timestamps (e.g. .mkv -> .mp4)")
    dts = decode_timestamps(pts)
    for i, (source_pts, packet) in enumerate(segment_packets()):
        packet.pts, packet.dts = pts[i], dts[i]
        packet.duration = _rescale(info.durations.get(source_pts, 0), info.time_base, out_tb)
        packet.time_base = out_tb
        packet.stream = stream
        yield Fraction(dts[i]) * out_tb, packet


def _other_packets(inp, streams, mapping) -> Iterator[tuple[Fraction, av.Packet]]:
    if not streams:
        return
    last = Fraction(0)
    for packet in inp.demux(streams):
        if packet.size == 0:
            continue
        t = packet.dts if packet.dts is not None else packet.pts
        if t is not None:
            last = Fraction(t) * packet.time_base
        packet.stream = mapping[packet.stream.index]
        yield last, packet
