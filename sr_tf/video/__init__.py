"""Video super-resolution with PyAV (FFmpeg's libraries from PyPI; no `ffmpeg` binary needed).

`upscale_video(input, output, Upscaler(model), VideoConfig(...))` upscales the video stream
through the image path's model and tiler in batches of frames and copies every other stream;
frame count, timestamps (variable frame rate too), rotation, aspect ratio and colour tags are
kept. Work is split into keyframe-aligned segments that are encoded, written and resumed one by
one (and spread over Beam workers by `sr_tf.batch.video`), then joined without re-encoding.
"""

from sr_tf.video.colour import Colour
from sr_tf.video.config import VideoConfig
from sr_tf.video.errors import VideoError
from sr_tf.video.job import VideoPlan, VideoResult, parts_dir, plan_video, upscale_video
from sr_tf.video.probe import VIDEO_SUFFIXES, Segment, VideoInfo, plan_segments, probe_video

__all__ = [
    "VIDEO_SUFFIXES",
    "Colour",
    "Segment",
    "VideoConfig",
    "VideoError",
    "VideoInfo",
    "VideoPlan",
    "VideoResult",
    "parts_dir",
    "plan_segments",
    "plan_video",
    "probe_video",
    "upscale_video",
]
