"""Upscaling one video file, resumably: plan segments, encode the missing ones, join, rename.

Work happens in a hidden parts folder beside the output (`.NAME.EXT.sr-tf-parts/`): a `job.json`
describing the input, the settings and the segment plan, and one `seg-NNNNN.nut` per finished
segment, each renamed into place only when complete, with `seg-NNNNN.nut.json` beside it recording
its size and SHA-256 (written after it). A run that finds the same `job.json` keeps the finished
segments that still match their record and encodes the others again (a damaged one is reported by
name); any other parts folder is discarded.
The output is joined under a hidden temporary name and renamed, so its final name never holds
a partial file; the parts folder is removed after that.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

from sr_tf.integrity import atomic_write_text, check_file, file_record
from sr_tf.video.config import VideoConfig
from sr_tf.video.errors import VideoError
from sr_tf.video.join import check_streams, join_segments
from sr_tf.video.probe import Segment, VideoInfo, plan_segments, probe_video
from sr_tf.video.segment import (
    SEGMENT_SUFFIX,
    FrameUpscaler,
    check_encoder,
    choose_pix_fmt,
    encode_segment,
    output_size,
)

JOB_FILE = "job.json"
KILL_AFTER_ENV = "SR_TF_VIDEO_KILL_AFTER"  # fault injection for tests: SIGKILL self after N new segments


@dataclasses.dataclass(frozen=True)
class VideoResult:
    """What `upscale_video` did: frames and segments in all, and the segments kept from an earlier run."""

    source: str
    target: str
    frames: int
    segments: int
    resumed_segments: int


@dataclasses.dataclass(frozen=True)
class VideoPlan:
    """A checked job for one input: everything decided before the first frame is upscaled."""

    info: VideoInfo
    segments: list[Segment]
    size: tuple[int, int]
    pix_fmt: str

    def describe(self) -> dict:
        """What a resumed run must agree on (JSON-ready)."""
        return {"frames": self.info.frames, "size": list(self.size), "pix_fmt": self.pix_fmt,
                "segments": [[s.start, s.end, s.frames] for s in self.segments]}


def plan_video(source, target: str | os.PathLike, scale: int, config: VideoConfig, name: str | None = None) -> VideoPlan:
    """Probes `source` (a path or an opener) and checks the output can be encoded and muxed as asked.

    Raises:
      VideoError: the input is unusable, or the settings / output container cannot work.
    """
    info = probe_video(source, name)
    size = output_size(info, scale, config.outscale)
    pix_fmt = choose_pix_fmt(config.codec, info.pix_fmt, config.pix_fmt)
    check_encoder(config, info, size, pix_fmt)
    check_streams(source, info, target, config.codec)
    return VideoPlan(info, plan_segments(info, config.segment_seconds), size, pix_fmt)


def parts_dir(target: str | os.PathLike) -> Path:
    target = Path(target)
    return target.parent / f".{target.name}.sr-tf-parts"


def segment_name(index: int) -> str:
    return f"seg-{index:05d}{SEGMENT_SUFFIX}"


def segment_problem(path: Path) -> str | None:
    """None when the finished segment `path` matches the record beside it (`record_segment`), else
    what is wrong ("missing", "not recorded", "truncated: ...", "corrupt: ...")."""
    if not path.exists():
        return "missing"
    try:
        record = json.loads(path.with_name(path.name + ".json").read_text())
    except (OSError, ValueError):
        return "not recorded"  # killed between the segment and its record, or the record is damaged
    return check_file(path, record)


def record_segment(path: Path) -> None:
    """Records the size and SHA-256 of a finished segment beside it (`seg-NNNNN.nut.json`)."""
    atomic_write_text(path.with_name(path.name + ".json"), json.dumps(file_record(path)))


def _file_identity(path: str) -> dict:
    st = os.stat(path)
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def upscale_video(
    source: str | os.PathLike,
    target: str | os.PathLike,
    upscaler: FrameUpscaler,
    config: VideoConfig | None = None,
    model_id: str = "",
    on_start: Callable[[int, int], None] | None = None,
    on_frames: Callable[[int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> VideoResult:
    """Upscales the video `source` into `target` (its container chosen by the extension).

    Args:
      upscaler: runs the model on `[N, H, W, 3]` batches (`sr_tf.inference.Upscaler`).
      config: encoding and segmenting settings.
      model_id: names the model (a catalogue name, a file with its size and time) so that a
        resumed run never mixes segments of two models.
      on_start: called once with (frames in all, frames already done by an earlier run).
      on_frames: called with each number of newly encoded frames.
      log: called with a line for each finished segment of an earlier run that is damaged (and
        encoded again).

    Raises:
      VideoError: one line naming the input and the problem; nothing is left under `target`.
    """
    config = config or VideoConfig()
    source, target = os.fspath(source), os.fspath(target)
    if os.path.exists(target) and os.path.samefile(source, target):
        raise VideoError(f"{source}: the output {target} would overwrite the input")
    plan = plan_video(source, target, upscaler.scale, config)
    parts = parts_dir(target)
    state = {"input": _file_identity(source), "model": model_id, "scale": upscaler.scale,
             "settings": config.fingerprint(), "plan": plan.describe()}
    _prepare_parts(parts, state)
    paths = [parts / segment_name(s.index) for s in plan.segments]
    problems = [segment_problem(p) for p in paths]
    done = [problem is None for problem in problems]
    for path, problem in zip(paths, problems, strict=True):
        if log and problem not in (None, "missing", "not recorded"):
            log(f"{source}: segment {path} of an earlier run is {problem}; encoding it again")
    if on_start:
        on_start(plan.info.frames, sum(s.frames for s, d in zip(plan.segments, done, strict=True) if d))
    kill_after, encoded = int(os.environ.get(KILL_AFTER_ENV, "0") or 0), 0
    for segment, path, finished in zip(plan.segments, paths, done, strict=True):
        if not finished:
            encode_segment(source, plan.info, segment, upscaler, config, path, on_frames)
            record_segment(path)
            encoded += 1
            if kill_after and encoded >= kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
    tmp = Path(target).parent / f".{Path(target).stem}.sr-tf-partial{Path(target).suffix}"
    try:
        join_segments(source, plan.info, plan.segments, [str(p) for p in paths], tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    shutil.rmtree(parts, ignore_errors=True)
    return VideoResult(source, target, plan.info.frames, len(paths), sum(done))


def _prepare_parts(parts: Path, state: dict) -> None:
    """Keeps `parts` if it belongs to the same job, else starts it afresh."""
    job = parts / JOB_FILE
    try:
        same = json.loads(job.read_text()) == json.loads(json.dumps(state))
    except (OSError, ValueError):
        same = False
    if same:
        return
    if parts.exists():
        shutil.rmtree(parts)
    parts.mkdir(parents=True)
    atomic_write_text(job, json.dumps(state, indent=1))
