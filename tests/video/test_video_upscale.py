"""`sr-tf upscale-video` end to end on clips made here: what must come through unchanged, and the pixels."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import av
import numpy as np
import pytest
from video_helpers import (
    SCALE,
    decoded_frames,
    decoded_planes,
    make_clip,
    psnr,
    stream_packets,
    subtitle_cues,
    video_facts,
)

from sr_tf.cli import main
from sr_tf.inference import Upscaler, upscale_image
from sr_tf.runtime import load_generator as load_model


def _run(*args) -> int:
    return main(["upscale-video", *map(str, args), "--no-progress"])


def _assert_same_except_size(src, out, **changes):
    a, b = video_facts(src), video_facts(out)
    w, h = a["size"]
    assert b["size"] == (w * SCALE, h * SCALE)
    for key, value in changes.items():
        assert b[key] == value, key
    for key in ("frames", "matrix", "sar", "colour", "duration", "stream_durations", "streams", "pix_fmt", "title",
                "chapters"):
        if key not in changes:
            assert b[key] == a[key], key


def _image_path_psnr(model_file, src, out, **kwargs) -> list[float]:
    """PSNR of each output frame against `upscale_image` (the image path) on the same decoded frames."""
    upscaler = Upscaler(load_model(model_file))
    frames, _ = decoded_frames(src, fmt="float")
    results, _ = decoded_frames(out)
    assert len(results) == len(frames)
    return [psnr(np.round(upscale_image(upscaler, f, **kwargs) * 255), r) for f, r in zip(frames, results, strict=True)]


@pytest.fixture(scope="module")
def mp4_run(tmp_path_factory, nearest_model_file):
    """A 34x26 MP4 (4:2:0 BT.709, AAC, mov_text subtitles, 90 degree rotation, 4:3 pixels) through the defaults."""
    d = tmp_path_factory.mktemp("mp4")
    src = d / "clip.mp4"
    make_clip(src, sar=Fraction(4, 3))
    assert _run(src, "-o", d / "out", "--model", nearest_model_file, "--segment-seconds", "0.5") == 0
    return src, d / "out" / "clip_out.mp4"


def test_mp4_keeps_frames_timestamps_streams_rotation_and_aspect(mp4_run):
    src, out = mp4_run
    _assert_same_except_size(src, out)
    assert video_facts(out)["matrix"] is not None  # the rotation tag is there to keep
    _, t_in = decoded_frames(src)
    _, t_out = decoded_frames(out)
    assert t_out == t_in  # every frame at the same time
    a, b = stream_packets(src), stream_packets(out)
    assert b[1] == a[1]  # the AAC track: the same packets, bytes and times (copied, not re-encoded)
    assert subtitle_cues(out) == subtitle_cues(src) and len(subtitle_cues(src)) == 2
    assert not list(out.parent.glob(".*"))  # no parts folder or partial file left


def test_mp4_frames_match_the_image_path(mp4_run, nearest_model_file):
    # 4:2:0 at crf 18 loses some of the clip's texture; a wrong colour matrix or range costs far more.
    scores = _image_path_psnr(nearest_model_file, *mp4_run)
    assert min(scores) >= 30.0, scores


def test_tiled_batches_of_a_random_model_match_the_image_path(tmp_path, random_model_file):
    """Lossless 4:4:4 output (FFV1): only the RGB <-> YUV rounding separates video and image path."""
    src = tmp_path / "clip.mkv"
    make_clip(src, size=(36, 28), frames=10, audio=False, subtitles=False, rotation=None)
    out = tmp_path / "up.mkv"
    assert _run(src, "-o", out, "--model", random_model_file, "--codec", "ffv1", "--pix-fmt", "yuv444p",
                "--tile", "16", "--batch", "3") == 0
    scores = _image_path_psnr(random_model_file, src, out, tile=16)
    assert min(scores) >= 44.0, scores


def test_mkv_variable_frame_rate_full_range_bt601_odd_size(tmp_path, nearest_model_file):
    src = tmp_path / "vfr.mkv"
    pts = [0, 40, 80, 160, 200, 330, 370, 410, 500, 540, 700, 740, 780, 820, 990, 1030, 1070, 1200]
    make_clip(src, size=(35, 27), pts=pts, time_base=Fraction(1, 1000), keyint=4, pix_fmt="yuv444p",
              colorspace=5, color_range=2, rotation=None, sar=Fraction(8, 9), chapters=True, attachment=True)
    assert _run(src, "-o", tmp_path, "--model", nearest_model_file, "--segment-seconds", "0.3") == 0
    out = tmp_path / "vfr_out.mkv"
    # Matroska's muxer recomputes the duration of a copied AAC track (its codec delay) 18 ms longer than the
    # encoder-fed muxer that wrote the clip did; a plain stream-copy remux does the same. The packets are equal.
    facts = video_facts(out)
    _assert_same_except_size(src, out, duration=facts["duration"], stream_durations=facts["stream_durations"])
    assert facts["stream_durations"][0] == video_facts(src)["stream_durations"][0]
    assert video_facts(out)["colour"][:2] == (5, 2)
    assert video_facts(out)["title"] == "sr-tf test clip" and len(video_facts(out)["chapters"]) == 2
    assert ("attachment", None, "font.ttf") in video_facts(out)["streams"]
    _, t_in = decoded_frames(src)
    _, t_out = decoded_frames(out)
    assert t_out == t_in == [t / 1000 for t in pts]
    assert subtitle_cues(out) == subtitle_cues(src)
    assert stream_packets(out)[1] == stream_packets(src)[1]
    assert min(_image_path_psnr(nearest_model_file, src, out)) >= 30.0


@pytest.mark.parametrize("pix_fmt, colorspace, color_range, deep", [
    ("yuv444p", 6, 2, False),      # BT.601, full range, 8 bits
    ("yuv444p10le", 1, 1, True),   # BT.709, limited range, 10 bits of detail
])
def test_colour_and_bit_depth_survive_exactly(tmp_path, nearest_model_file, pix_fmt, colorspace, color_range, deep):
    """With a model that is exactly nearest-neighbour and a lossless codec, every output sample equals the
    input sample it was upscaled from: the YUV -> RGB -> YUV round trip uses the input's matrix and range
    both ways and keeps 10 bits (an 8-bit step, or another matrix or range, would change samples)."""
    src = tmp_path / "in.mkv"
    make_clip(src, frames=6, codec="ffv1", pix_fmt=pix_fmt, colorspace=colorspace, color_range=color_range,
              audio=False, subtitles=False, rotation=None, deep=deep, direct_yuv=True)
    out = tmp_path / "out.mkv"
    assert _run(src, "-o", out, "--model", nearest_model_file, "--codec", "ffv1") == 0
    assert video_facts(out)["pix_fmt"] == pix_fmt
    assert video_facts(out)["colour"][:2] == (colorspace, color_range)
    for a, b in zip(decoded_planes(src), decoded_planes(out), strict=True):
        for plane_in, plane_out in zip(a, b, strict=True):
            np.testing.assert_array_equal(plane_out[::SCALE, ::SCALE], plane_in)
    if deep:
        assert np.mean(decoded_planes(src)[0][0] % 4 != 0) > 0.5  # the clip really uses 10 bits


def test_ten_bit_input_stays_ten_bit_with_libx265(tmp_path, nearest_model_file):
    src = tmp_path / "deep.mp4"
    make_clip(src, frames=8, pix_fmt="yuv420p10le", deep=True, subtitles=False)
    out = tmp_path / "deep_hevc.mp4"
    assert _run(src, "-o", out, "--model", nearest_model_file, "--codec", "libx265") == 0
    facts = video_facts(out)
    assert facts["codec"] == "hevc" and facts["pix_fmt"] == "yuv420p10le"
    _assert_same_except_size(src, out, codec="hevc", streams=[("video", "hevc", None), ("audio", "aac", None)])


def test_mp4_track_lasts_as_long_as_its_input_whatever_the_decode_order(tmp_path):
    """libx265 picks its frame types by thread timing; in some runs the first packets are I, P, B (pts
    0, 1024, 512 in decode order), the order that made FFmpeg's MP4 muxer round the track 4 ticks of
    1/12288 s short. That order is forced here, so the join meets it in every run."""
    from sr_tf.video import plan_segments, probe_video
    from sr_tf.video.join import join_segments

    src = tmp_path / "in.mp4"
    make_clip(src, frames=8, subtitles=False)
    info = probe_video(str(src))
    segment = tmp_path / "seg.nut"
    with av.open(str(segment), "w", format="nut") as container:
        stream = container.add_stream("libx265", rate=24)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        stream.time_base = stream.codec_context.time_base = info.time_base
        stream.codec_context.options = {"x265-params": "log-level=error:bframes=4:b-adapt=0"}
        for t, kind in zip(info.frame_pts, "IBPBBBBP", strict=True):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), t % 251, np.uint8), format="rgb24")
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base, frame.pict_type = t, info.time_base, getattr(av.video.frame.PictureType, kind)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with av.open(str(segment)) as container:
        order = [p.pts * p.time_base / info.time_base for p in container.demux(video=0) if p.size]
        assert [t - order[0] for t in order] == [0, 1024, 512, 3584, 2560, 1536, 2048, 3072]  # NUT shifts them
    out = tmp_path / "out.mp4"
    join_segments(str(src), info, plan_segments(info, 100.0), [str(segment)], out)
    a, b = video_facts(src), video_facts(out)
    assert (b["duration"], b["stream_durations"]) == (a["duration"], a["stream_durations"])
    assert decoded_frames(out)[1] == decoded_frames(src)[1]


def test_untagged_input_is_tagged_with_what_players_assume(tmp_path, nearest_model_file):
    """An untagged SD input is BT.601 to players; its HD-sized output must say so, or players would use BT.709."""
    src = tmp_path / "untagged.mkv"
    make_clip(src, frames=4, colorspace=None, color_range=None, audio=False, subtitles=False, rotation=None)
    with av.open(str(src)) as c:
        assert next(c.decode(video=0)).colorspace == 2  # unspecified
    out = tmp_path / "out.mkv"
    assert _run(src, "-o", out, "--model", nearest_model_file) == 0
    assert video_facts(out)["colour"] == (6, 1, 6, 6)  # smpte170m (BT.601), limited range


def test_bad_inputs_each_get_one_line_and_the_others_go_on(tmp_path, nearest_model_file, capsys):
    good = tmp_path / "good.mp4"
    make_clip(good, frames=6, subtitles=False)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 50)
    audio_only = tmp_path / "sound.m4a"
    with av.open(str(good)) as inp, av.open(str(audio_only), "w") as out:
        stream = out.add_stream_from_template(inp.streams.audio[0])
        for packet in inp.demux(inp.streams.audio[0]):
            if packet.size:
                packet.stream = stream
                out.mux(packet)
    truncated = tmp_path / "cut.mkv"
    make_clip(tmp_path / "whole.mkv", frames=48, subtitles=False)
    data = (tmp_path / "whole.mkv").read_bytes()
    truncated.write_bytes(data[: len(data) * 6 // 10])
    unsupported = tmp_path / "avs2.mkv"
    with av.open(str(unsupported), "w") as out:  # a codec FFmpeg can store but this build cannot decode
        stream = out.add_mux_stream("avs2", width=32, height=32)
        stream.time_base = Fraction(1, 25)
        packet = av.Packet(b"\0" * 64)
        packet.stream, packet.pts, packet.dts, packet.time_base = stream, 0, 0, stream.time_base
        out.mux(packet)
    bad = [text, audio_only, truncated, unsupported, tmp_path / "missing.mp4"]
    code = _run(*bad, good, "-o", tmp_path / "out", "--model", nearest_model_file)
    assert code == 1
    err = capsys.readouterr().err.splitlines()
    expect = {"notes.mp4": "not a video file", "sound.m4a": "has no video stream", "cut.mkv": "truncated",
              "avs2.mkv": "unsupported video codec", "missing.mp4": "no such file"}
    for name, words in expect.items():
        lines = [line for line in err if name in line]
        assert len(lines) == 1 and words in lines[0], (name, err)
    produced = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert produced == ["good_out.mp4"]  # nothing partial under any name, no parts folders


def test_output_over_an_input_is_refused(tmp_path, nearest_model_file, capsys):
    src = tmp_path / "clip.mp4"
    make_clip(src, frames=6, subtitles=False)
    before = src.read_bytes()
    assert _run(src, "-o", src, "--model", nearest_model_file) == 1
    assert _run(src, "-o", tmp_path, "--suffix", "", "--model", nearest_model_file) == 1
    assert src.read_bytes() == before
    assert capsys.readouterr().err.count("would overwrite an input") == 2


def test_settings_that_cannot_work_fail_before_any_work(tmp_path, nearest_model_file, capsys):
    src = tmp_path / "clip.mkv"
    make_clip(src, size=(35, 27), frames=4, pix_fmt="yuv444p", audio=False, subtitles=False, rotation=None)
    assert _run(src, "-o", tmp_path / "a", "--model", nearest_model_file, "--scale", "3", "--pix-fmt", "yuv420p") == 1
    assert "needs even dimensions" in capsys.readouterr().err
    assert _run(src, "-o", tmp_path / "b", "--model", nearest_model_file, "--codec", "nosuchcodec") == 1
    assert "not a video encoder" in capsys.readouterr().err
    mp4 = tmp_path / "clip.mp4"
    make_clip(mp4, frames=4)
    assert _run(mp4, "-o", tmp_path / "c.webm", "--model", nearest_model_file, "--codec", "libvpx-vp9") == 1
    assert "cannot be stored in webm" in capsys.readouterr().err  # AAC and mov_text do not fit WebM
    assert not (tmp_path / "c.webm").exists()


def test_help_imports_neither_tensorflow_nor_pyav():
    code = ("import sys\nfrom sr_tf.cli import main\ntry:\n    main(['upscale-video', '--help'])\n"
            "except SystemExit:\n    pass\nprint(sorted(m for m in ('tensorflow', 'av', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.large
def test_real_compact_model_matches_the_image_path(tmp_path):
    src = tmp_path / "clip.mp4"
    make_clip(src, size=(64, 48), frames=8, subtitles=False)
    assert _run(src, "-o", tmp_path, "--model", "realesr-animevideov3-x4") == 0
    scores = _image_path_psnr("realesr-animevideov3-x4", src, tmp_path / "clip_out.mp4")
    assert min(scores) >= 33.0, scores
