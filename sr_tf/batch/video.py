"""Videos in a batch job: each segment of each video is one element of the Beam pipeline.

    Create(videos) -> FlatMap(plan: probe a video, one task per keyframe-aligned segment; a video that
      cannot be processed, or whose output exists, becomes a finished task)
      -> Reshuffle (spreads the segments of one long video over many workers)
      -> ParDo(UpscaleSegmentDoFn: encodes a segment into OUTPUT/.sr-tf-video-parts/REL/seg-NNNNN.nut)
      -> key by video -> GroupByKey -> ParDo(JoinVideoDoFn: joins the segments with the input's other
         streams into OUTPUT/REL, then deletes the parts) -> outcomes
      -> results / errors shards, as for images (`sr_tf.batch.results.WriteShard`)

Segments and outputs appear under their final names only when complete, so a re-run after a
crash or a kill encodes only the missing segments and joins only the missing outputs. A video
folder of parts holds a `job.json` naming the input (size, time) and the plan; parts of a changed
input are discarded. The model runs in `setup` once per worker: a SavedModel through its
`serving_default` signature (as images), a `.keras` file or catalogue name through
`sr_tf.inference.Upscaler` (the image path's tiler).
"""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from sr_tf import storage
from sr_tf.batch import verify
from sr_tf.batch.config import BatchConfig
from sr_tf.batch.pipeline import check_model_spec, run_and_summarise
from sr_tf.batch.results import (
    METRICS_NAMESPACE,
    BatchSummary,
    Outcome,
    WriteShard,
    error_line,
    result_line,
    shard_of,
)
from sr_tf.batch.sources import Source, _matches, _normalise, _rel
from sr_tf.defaults import TILE_PAD
from sr_tf.integrity import atomic_write
from sr_tf.video import VIDEO_SUFFIXES, VideoConfig, VideoError

PARTS = ".sr-tf-video-parts"
MANIFEST = ".sr-tf-video-job.json"


@dataclasses.dataclass(frozen=True)
class SegmentTask:
    """One segment to encode (`segment` set), or a video already finished (`outcome` set).

    `info` is the video's `VideoInfo` without its per-frame tables (they can be long; the
    segment does not need them).
    """

    key: str
    output: str
    parts: str
    count: int = 0
    segment: object = None
    info: object = None
    outcome: Outcome | None = None


@dataclasses.dataclass(frozen=True)
class SegmentDone:
    key: str
    index: int
    count: int
    output: str
    parts: str
    error: str | None = None
    outcome: Outcome | None = None


def find_video_sources(config: BatchConfig) -> list[Source]:
    """The videos named by `--input` (a folder or prefix: files with a video extension; a glob or a file:
    what it names), outputs and parts of earlier runs excluded, sorted."""
    files, root = _matches(_normalise(config.input))
    files = [_normalise(f) for f in files]
    root = _normalise(root).rstrip("/") + "/" if root else ""
    out_root = _normalise(config.output).rstrip("/") + "/"
    if not storage.has_glob(config.input) and len(files) > 1:
        files = [f for f in files if posixpath.splitext(f)[1].lower() in VIDEO_SUFFIXES]
    sources = [Source(f, _rel(f, root), "video") for f in files
               if not f.startswith(out_root) and not posixpath.basename(f).startswith(".")]
    if not sources:
        raise FileNotFoundError(f"`input` names no video files. Received: input={config.input!r}")
    return sorted(sources, key=lambda s: s.uri)


def _opener(uri: str):
    """A callable that opens `uri` for reading: a local path as is, a gs:// object as a seekable stream."""
    if not storage.is_gcs(uri):
        return uri
    bucket, name = storage.split_gcs(uri)

    def open_blob():
        return storage.client().bucket(bucket).blob(name).open("rb", chunk_size=8 << 20)

    return open_blob


def _identity(uri: str) -> dict:
    if storage.is_gcs(uri):
        bucket, name = storage.split_gcs(uri)
        blob = storage.client().bucket(bucket).get_blob(name)
        if blob is None:
            raise FileNotFoundError(f"No such object: {uri}")
        return {"uri": uri, "size": blob.size, "generation": blob.generation}
    st = os.stat(uri)
    return {"uri": uri, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _segment_uri(parts: str, index: int) -> str:
    from sr_tf.video.job import segment_name

    return storage.join(parts, segment_name(index))


def plan_tasks(source: Source, config: BatchConfig, video: VideoConfig, scale: int) -> Iterator[SegmentTask]:
    """The tasks of one video: its segments, or one finished task (output exists, or the video is unusable)."""
    from sr_tf.video.job import plan_video

    output = storage.join(config.output, source.rel)
    parts = storage.join(config.output, f"{PARTS}/{source.rel}")
    if not config.overwrite and verify.reusable(config.output, output):
        line = result_line(source.uri, json.dumps({"output": output}))
        yield SegmentTask(source.uri, output, parts, outcome=Outcome(True, source.uri, line))
        return
    try:
        with tempfile.TemporaryDirectory(prefix="sr-tf-plan-") as tmp:
            plan = plan_video(_opener(source.uri), os.path.join(tmp, posixpath.basename(source.rel)), scale, video,
                              name=source.uri)
        state = {"input": _identity(source.uri), "plan": plan.describe()}
        _prepare_parts(parts, state)
    except VideoError as err:
        line = error_line(source.uri, "INVALID_ARGUMENT", str(err))
        yield SegmentTask(source.uri, output, parts, outcome=Outcome(False, source.uri, line))
        return
    slim = dataclasses.replace(plan.info, frame_pts=(), keyframes=(), durations={})
    for segment in plan.segments:
        yield SegmentTask(source.uri, output, parts, len(plan.segments), segment, slim)


def _prepare_parts(parts: str, state: dict) -> None:
    """Keeps the parts of the same input and plan; deletes others."""
    uri = storage.join(parts, "job.json")
    try:
        same = json.loads(storage.read_text(uri)) == json.loads(json.dumps(state))
    except (FileNotFoundError, ValueError):
        same = False
    if same:
        return
    for old in storage.list_files(parts) if storage.is_dir(parts) else []:
        storage.delete(old)
    storage.write_bytes(uri, json.dumps(state).encode(), "application/json")


class _ServingFrames:
    """A SavedModel's pixel signature seen as `upscale_batch([N, H, W, 3] float32 [0, 1])`."""

    def __init__(self, predictor):
        self._predictor = predictor
        self.scale = int(predictor(np.zeros((1, 8, 8, 3), np.float32)).shape[1] // 8)

    def upscale_batch(self, batch: np.ndarray, tile: int = 0, tile_pad: int = TILE_PAD) -> np.ndarray:
        return self._predictor(batch * 255.0) / 255.0  # tiled inside the graph, as exported


def load_frame_upscaler(spec: str, tile: int, tile_pad: int, backend: str = "tf", precision: str = "float32",
                        color_fix: str = "none"):
    """The model of a video job, loaded once per worker (see the module docstring)."""
    from sr_tf.batch.predictor import load_predictor
    from sr_tf.runtime import load_generator, model_spec

    parsed = model_spec(spec)
    if parsed.kind == "savedmodel":
        return _ServingFrames(load_predictor(spec, tile, tile_pad, backend, precision, color_fix))
    from sr_tf.inference import Upscaler

    return Upscaler(load_generator(parsed), backend, precision, color_fix)


class UpscaleSegmentDoFn(beam.DoFn):
    """SegmentTask -> SegmentDone, encoding the segment unless its part exists."""

    def __init__(self, config: BatchConfig, video: VideoConfig):
        self.config, self.video = config, video
        self.frames = Metrics.counter(METRICS_NAMESPACE, "video_frames")
        self.segments = Metrics.counter(METRICS_NAMESPACE, "video_segments")

    def setup(self):
        c = self.config
        self._upscaler = load_frame_upscaler(c.model, c.tile, c.tile_pad, c.backend, c.precision, c.color_fix)

    def process(self, task: SegmentTask) -> Iterator[SegmentDone]:
        from sr_tf.video.segment import encode_segment

        if task.outcome is not None:
            yield SegmentDone(task.key, -1, 0, task.output, task.parts, outcome=task.outcome)
            return
        seg = task.segment
        uri = _segment_uri(task.parts, seg.index)
        done = SegmentDone(task.key, seg.index, task.count, task.output, task.parts)
        if verify.reusable(None, uri):  # a finished segment, as recorded beside it
            yield done
            return
        try:
            with tempfile.TemporaryDirectory(prefix="sr-tf-seg-") as tmp:
                local = os.path.join(tmp, posixpath.basename(uri))
                frames = encode_segment(_opener(task.key), task.info, seg, self._upscaler, self.video, local)
                _upload(local, uri)
                verify.record_upload(None, uri, local)
        except VideoError as err:
            yield dataclasses.replace(done, error=str(err))
            return
        self.frames.inc(frames)
        self.segments.inc()
        yield done


def _upload(local: str, uri: str) -> None:
    """Puts a finished local file at `uri`: a GCS upload (the object appears complete), or a rename."""
    if storage.is_gcs(uri):
        bucket, name = storage.split_gcs(uri)
        storage.client().bucket(bucket).blob(name).upload_from_filename(local)
        return
    atomic_write(uri, lambda tmp: shutil.copyfile(local, tmp))


class JoinVideoDoFn(beam.DoFn):
    """(video, [SegmentDone]) -> the video's `Outcome`, writing its output when every segment is there."""

    def __init__(self, config: BatchConfig, video: VideoConfig):
        self.config, self.video = config, video
        self.written = Metrics.counter(METRICS_NAMESPACE, "written")

    def process(self, element) -> Iterator[Outcome]:
        from sr_tf.video.join import join_segments
        from sr_tf.video.probe import plan_segments, probe_video

        key, done = element
        done = list(done)
        finished = [d.outcome for d in done if d.outcome is not None]
        if finished:
            yield finished[0]
            return
        errors = [d.error for d in done if d.error]
        if errors:
            yield Outcome(False, key, error_line(key, "INVALID_ARGUMENT", errors[0]))
            return
        first = done[0]
        indices = sorted({d.index for d in done})
        if indices != list(range(first.count)):
            yield Outcome(False, key, error_line(key, "INTERNAL", f"segments missing: have {indices}"))
            return
        try:
            info = probe_video(_opener(key), key)
            segments = plan_segments(info, self.video.segment_seconds)
            if len(segments) != first.count:
                raise VideoError(f"{key}: the input changed while the job ran")
            with tempfile.TemporaryDirectory(prefix="sr-tf-join-") as tmp:
                paths = []
                for seg in segments:
                    local = os.path.join(tmp, f"seg-{seg.index:05d}.nut")
                    with open(local, "wb") as f:
                        f.write(storage.read_bytes(_segment_uri(first.parts, seg.index)))
                    paths.append(local)
                joined = os.path.join(tmp, "out" + posixpath.splitext(first.output)[1])
                join_segments(_opener(key), info, segments, paths, joined)
                _upload(joined, first.output)
                verify.record_upload(self.config.output, first.output, joined)
        except (VideoError, FileNotFoundError) as err:
            yield Outcome(False, key, error_line(key, "INVALID_ARGUMENT", str(err)))
            return
        self.written.inc()
        _remove_parts(first.parts, self.config.output)
        yield Outcome(True, key, result_line(key, json.dumps(
            {"output": first.output, "frames": info.frames, "segments": len(segments)})))


def _remove_parts(parts: str, output: str) -> None:
    """Deletes a joined video's parts (and, locally, the folders they leave empty)."""
    for uri in storage.list_files(parts):
        storage.delete(uri)
    if storage.is_gcs(parts):
        return
    folder, root = os.path.abspath(parts), os.path.abspath(storage.join(output, PARTS))
    while folder.startswith(root):
        try:
            os.rmdir(folder)
        except OSError:  # not empty (another video's parts) or gone
            return
        folder = os.path.dirname(folder)


def build_video_pipeline(pipeline, config: BatchConfig, video: VideoConfig, sources: list[Source],
                         scale: int) -> None:
    """Adds a video job's transforms to a `beam.Pipeline` (see the module docstring)."""
    n = config.num_shards
    (
        pipeline
        | "Videos" >> beam.Create(sources)
        | "PlanSegments" >> beam.FlatMap(plan_tasks, config, video, scale)
        | "Spread" >> beam.Reshuffle()
        | "UpscaleSegments" >> beam.ParDo(UpscaleSegmentDoFn(config, video))
        | "ByVideo" >> beam.Map(lambda d: (d.key, d))
        | "GroupByVideo" >> beam.GroupByKey()
        | "Join" >> beam.ParDo(JoinVideoDoFn(config, video))
        | "KeyByShard" >> beam.Map(lambda o: ((o.ok, shard_of(o.key, n)), (o.key, o.line)))
        | "GroupByShard" >> beam.GroupByKey()
        | "WriteShards" >> beam.ParDo(WriteShard(config.output, n))
    )


def check_video_manifest(config: BatchConfig, video: VideoConfig) -> None:
    """Refuses to resume into an output folder written with other settings (`--overwrite` restarts)."""
    uri = storage.join(config.output, MANIFEST)
    want = {"model": config.model, "tile": config.tile, "tile_pad": config.tile_pad, "backend": config.backend,
            "precision": config.precision, **video.fingerprint()}
    if config.color_fix != "none":  # absent without one: manifests of earlier versions still match
        want["color_fix"] = config.color_fix
    try:
        have = json.loads(storage.read_text(uri))
    except FileNotFoundError:
        have = None
    if have == json.loads(json.dumps(want)):
        return
    if have is not None and not config.overwrite:
        diff = {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}
        raise ValueError(f"`output` {config.output!r} holds the outputs of a different video job (was -> now: "
                         f"{diff}); use another `output`, or `overwrite` to recompute everything")
    for old in storage.list_files(storage.join(config.output, PARTS)) if storage.is_dir(
            storage.join(config.output, PARTS)) else []:
        storage.delete(old)
    storage.write_bytes(uri, json.dumps(want, sort_keys=True).encode(), "application/json")


def _model_scale(spec: str) -> int:
    """The model's scale, read in the driver (plans need output sizes)."""
    return load_frame_upscaler(spec, 0, 0).scale  # in TensorFlow: the scale is the same in every backend


def run_video_batch(config: BatchConfig, video: VideoConfig, pipeline_args: list[str] | None = None) -> BatchSummary:
    """Runs a video job (DirectRunner unless `pipeline_args` names another `--runner`) and waits for it.

    Raises:
      FileNotFoundError / ValueError: bad `--model` or `--input`, or `--output` holds another job's outputs.
    """
    from apache_beam.options.pipeline_options import PipelineOptions

    config = dataclasses.replace(config, model=check_model_spec(config.model))
    video = dataclasses.replace(video, batch_size=config.batch_size, tile=config.tile, tile_pad=config.tile_pad)
    sources = find_video_sources(config)
    check_video_manifest(config, video)
    scale = _model_scale(config.model)
    pipeline = beam.Pipeline(options=PipelineOptions(list(pipeline_args or [])))
    build_video_pipeline(pipeline, config, video, sources, scale)
    return run_and_summarise(pipeline, config)
