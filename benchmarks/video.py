"""Frames/s of the whole `upscale-video` pipeline against the model alone on the same decoded frames.

The model-alone figure runs `Upscaler.upscale_batch` on the clip's frames, decoded to float RGB
beforehand (not timed), in the same batches the pipeline uses. The pipeline figure is
`sr_tf.video.upscale_video` end to end: probe, decode, colour conversion, the model, colour
conversion back, encoding, the segment file and the final join with the audio track. The ratio
is what decoding, colour conversion, encoding and muxing cost (goal: at most 10% with the compact
x4 model at 480p). The model alone is timed before and after the pipeline, and the mean used,
so machine noise drifting during the run counts on both sides. Wall and CPU time (this process,
all threads) are printed with the machine's load.

    python benchmarks/video.py                                  # 854x480, 8 frames, realesr-animevideov3-x4
    python benchmarks/video.py --frames 32 --batch 4 --preset veryfast
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def make_clip(path: Path, width: int, height: int, frames: int, fps: int = 24) -> None:
    """A 4:2:0 BT.709 H.264 clip with an AAC track: moving smooth colours plus fine texture."""
    import av

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.colorspace, video.codec_context.color_range = 1, 1
        audio = out.add_stream("aac", rate=48000)
        for i in range(frames):
            rgb = np.stack([np.sin((x + 4 * i) / 37), np.cos((y - 3 * i) / 23), np.sin((x + y + 5 * i) / 51)], -1)
            rgb = np.clip((0.5 + 0.4 * rgb) * 255 + rng.normal(0, 4, rgb.shape), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        samples = int(48000 * frames / fps)
        tone = np.sin(2 * np.pi * 440 * np.arange(samples) / 48000).astype(np.float32)[None]
        for start in range(0, samples, 1024):
            chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start : start + 1024]), format="fltp",
                                               layout="mono")
            chunk.sample_rate, chunk.pts = 48000, start
            out.mux(audio.encode(chunk))
        out.mux(audio.encode(None))


def model_alone(upscaler, frames: np.ndarray, batch: int) -> tuple[float, float]:
    """(wall s, CPU s) of the model over `frames` in batches of `batch`."""
    t, c = time.perf_counter(), _cpu()
    for start in range(0, len(frames), batch):
        upscaler.upscale_batch(frames[start : start + batch])
    return time.perf_counter() - t, _cpu() - c


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="realesr-animevideov3-x4")
    p.add_argument("--size", default="854x480", help="input WIDTHxHEIGHT (default: %(default)s)")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--codec", default="libx264")
    p.add_argument("--preset", default=None)
    p.add_argument("--crf", type=int, default=None)
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from machine import describe

    from sr_tf.inference import Upscaler
    from sr_tf.runtime import load_generator as load_model
    from sr_tf.video import VideoConfig, probe_video, upscale_video
    from sr_tf.video.colour import frame_to_rgb

    width, height = (int(v) for v in args.size.lower().split("x"))
    print(describe())
    with tempfile.TemporaryDirectory(prefix="sr-tf-bench-video-") as tmp:
        clip = Path(tmp) / "clip.mp4"
        make_clip(clip, width, height, args.frames)
        import av

        info = probe_video(str(clip))
        with av.open(str(clip)) as c:
            frames = np.stack([frame_to_rgb(f, info.colour) for f in c.decode(video=0)])
        upscaler = Upscaler(load_model(args.model))
        upscaler.upscale_batch(frames[: args.batch])  # traces the forward pass for this shape
        config = VideoConfig(codec=args.codec, preset=args.preset, crf=args.crf, batch_size=args.batch,
                             segment_seconds=3600)
        before = model_alone(upscaler, frames, args.batch)
        t, c = time.perf_counter(), _cpu()
        upscale_video(clip, Path(tmp) / "out.mp4", upscaler, config)
        pipeline = (time.perf_counter() - t, _cpu() - c)
        after = model_alone(upscaler, frames, args.batch)
    n = len(frames)
    alone = ((before[0] + after[0]) / 2, (before[1] + after[1]) / 2)
    print(f"{args.model}, {width}x{height} -> x{upscaler.scale}, {n} frames, batch {args.batch}, "
          f"{args.codec} {config.encoder_options()}, load {os.getloadavg()[0]:.2f}")
    print(f"model alone: {n / alone[0]:.3f} frames/s (wall {alone[0]:.1f} s: {before[0]:.1f} before, {after[0]:.1f} "
          f"after; CPU {alone[1]:.1f} s)")
    print(f"pipeline:    {n / pipeline[0]:.3f} frames/s (wall {pipeline[0]:.1f} s, CPU {pipeline[1]:.1f} s)")
    print(f"pipeline / model alone: {alone[0] / pipeline[0]:.3f}x frames/s "
          f"(overhead {100 * (pipeline[0] / alone[0] - 1):+.1f}% wall, {100 * (pipeline[1] / alone[1] - 1):+.1f}% CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
