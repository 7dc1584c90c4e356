"""Pieces of the video pipeline: segment plans, decode timestamps at joins, pixel formats, batched tiling."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest

from sr_tf.video import Segment, VideoInfo, plan_segments
from sr_tf.video.colour import Colour
from sr_tf.video.join import decode_timestamps
from sr_tf.video.segment import choose_pix_fmt


def _info(frame_pts, keyframes, time_base=Fraction(1, 1000)) -> VideoInfo:
    return VideoInfo(path="x", format_name="matroska", video_index=0, codec="h264", width=8, height=8,
                     pix_fmt="yuv420p", time_base=time_base, rate=None, frame_pts=tuple(sorted(frame_pts)),
                     keyframes=tuple(keyframes), durations={}, display_matrix=None, sample_aspect_ratio=None,
                     colour=Colour(1, 1, 1, 1), other_streams=())


def test_segments_start_on_the_first_keyframe_at_least_the_length_later():
    pts = list(range(0, 3000, 100))  # 30 frames, 10 fps
    info = _info(pts, [0, 400, 900, 1000, 1700, 2500])
    segments = plan_segments(info, 1.0)
    assert [(s.start, s.end, s.frames) for s in segments] == [(None, 1000, 10), (1000, 2500, 15), (2500, None, 5)]
    assert sum(s.frames for s in segments) == len(pts)
    assert plan_segments(info, 100.0) == [Segment(0, None, None, 30)]


def test_frames_shown_before_a_cut_keyframe_stay_in_the_earlier_segment():
    # open GOP: the packet at 1000 is a keyframe, frames 900 and 950 come after it in decode order
    info = _info([0, 100, 1000, 900, 950, 1100], [0, 1000])
    first, second = plan_segments(info, 0.5)
    assert (first.end, first.frames, second.frames) == (1000, 4, 2)


@pytest.mark.parametrize("pts", [
    [0, 2, 1, 4, 3, 5],                     # one B-frame
    [0, 4, 2, 1, 3, 8, 6, 5, 7],            # B-pyramid
    [0, 1, 2, 3],                           # no reordering
    [10, 30, 20, 60, 40, 50, 70, 90, 80],   # variable spacing
])
def test_decode_timestamps_increase_and_never_pass_presentation(pts):
    dts = decode_timestamps(pts)
    assert all(a < b for a, b in zip(dts, dts[1:], strict=False))
    assert all(d <= p for d, p in zip(dts, pts, strict=True))
    assert sorted(dts)[len(dts) - len(set(pts)):] == dts  # strictly sorted, one per packet


def test_decode_timestamps_across_a_join_follow_the_frames():
    # two segments of an encoder with one B-frame; each alone starts its dts one frame early
    seg = [0, 200, 100, 400, 300]
    joined = seg + [t + 500 for t in seg]
    dts = decode_timestamps(joined)
    assert dts == [-100, 0, 100, 200, 300, 400, 500, 600, 700, 800]  # one encoder's, not two overlapping runs


def test_pixel_formats_keep_the_depth_where_the_codec_allows():
    assert choose_pix_fmt("libx264", "yuv420p10le", None) == "yuv420p10le"
    assert choose_pix_fmt("libx265", "yuv422p10le", None) == "yuv422p10le"
    assert choose_pix_fmt("libx264", "nv12", None) == "nv12"
    assert choose_pix_fmt("libx264", "gbrp", None) == "yuv444p"
    assert choose_pix_fmt("libvpx-vp9", "yuv420p12le", None) == "yuv420p"  # no 12 bits in this build's vp9
    assert choose_pix_fmt("libx265", "yuv420p12le", None) == "yuv420p12le"


def test_batched_tiling_equals_one_image_at_a_time():
    import keras

    from sr_tf.inference import Upscaler
    from sr_tf.models import SRVGGNetCompact

    keras.utils.set_random_seed(0)
    model = SRVGGNetCompact(num_feat=4, num_conv=1, upscale=2)
    upscaler = Upscaler(model)
    batch = np.random.default_rng(0).random((3, 21, 17, 3), dtype=np.float32)
    together = upscaler.upscale_batch(batch, tile=8, tile_pad=4)
    for image, out in zip(batch, together, strict=True):
        np.testing.assert_allclose(out, upscaler(image, tile=8, tile_pad=4), atol=1e-5)


def test_info_is_a_frozen_record():
    info = _info([0], [0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.width = 1
