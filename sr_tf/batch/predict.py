"""`PredictDoFn`: the worker side of a batch job (instances in, outputs written, `Outcome`s out).

It loads the model once per worker (`setup`), groups instances of the same shape into
`[N, H, W, 3]` batches within a bundle, writes each prediction to its own output (an image, or a
`.json` tensor) atomically and emits one results line per instance. An instance whose output
already exists, as recorded (`sr_tf.batch.verify`), is not recomputed: its results line is rebuilt
from the output.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

from sr_tf import storage
from sr_tf.batch import verify
from sr_tf.batch.config import BatchConfig
from sr_tf.batch.results import METRICS_NAMESPACE, Outcome, error_line, result_line
from sr_tf.batch.sources import Instance

KILL_AFTER_ENV = "SR_TF_BATCH_KILL_AFTER"  # fault injection for tests: SIGKILL self after N writes
# The driver's progress bar, ticked once per finished instance by DoFns that run in the driver's
# process (the DirectRunner's default in-memory mode); on remote runners it stays still until the end.
_on_instance: Callable[[], None] | None = None
_CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp", ".json": "application/json"}


@dataclasses.dataclass
class _Job:
    instance: Instance
    rows: np.ndarray | None  # [k, H, W, 3] float32 in [0, 255]; None for 16-bit images
    channels: int | None  # None: a tensor instance
    dtype: Any = np.uint8
    image: np.ndarray | None = None  # a 16-bit image as decoded
    metadata: Any = None  # the input's sr_tf.imageio.ImageMetadata; None: strip_metadata or a tensor

    def output_metadata(self, out: np.ndarray):
        """The metadata to write with the upscaled `[sH, sW, C]` image (None: none)."""
        return None if self.metadata is None else self.metadata.upscaled(out.shape[1], out.shape[0])


class PredictDoFn(beam.DoFn):
    """Instances -> `Outcome`s; writes each instance's output. See the module docstring."""

    def __init__(self, config: BatchConfig, max_pixels: int):
        self.config = config
        self.max_pixels = max_pixels
        self.written = Metrics.counter(METRICS_NAMESPACE, "written")
        self.skipped = Metrics.counter(METRICS_NAMESPACE, "skipped")
        self.batches = Metrics.counter(METRICS_NAMESPACE, "batches")

    def setup(self):
        from sr_tf.batch.predictor import load_predictor

        c = self.config
        self._predictor = load_predictor(c.model, c.tile, c.tile_pad, c.backend, c.precision, c.color_fix)
        self._writes = 0
        self._kill_after = int(os.environ.get(KILL_AFTER_ENV, "0") or 0)

    def start_bundle(self):
        self._pending: dict[tuple[int, int], list[_Job]] = {}

    def process(self, instance: Instance) -> Iterator[Outcome]:
        for outcome in self._handle(instance):
            _tick()
            yield outcome

    def finish_bundle(self):
        for shape in list(self._pending):
            for outcome in self._flush(shape):
                _tick()
                yield GlobalWindows.windowed_value(outcome)

    # --- per instance ---------------------------------------------------------------
    def _handle(self, inst: Instance) -> Iterator[Outcome]:
        if inst.kind == "invalid":
            yield Outcome(False, inst.key, error_line(inst.instance, "INVALID_ARGUMENT", inst.error))
            return
        if not self.config.overwrite:
            done = self._existing(inst)
            if done is not None:
                self.skipped.inc()
                yield done
                return
        try:
            job = self._prepare(inst)
        except FileNotFoundError as err:
            yield Outcome(False, inst.key, error_line(inst.instance, "NOT_FOUND", str(err)))
            return
        except (ValueError, OSError) as err:
            yield Outcome(False, inst.key, error_line(inst.instance, "INVALID_ARGUMENT", str(err)))
            return
        except _storage_errors() as err:
            yield Outcome(False, inst.key, error_line(inst.instance, "UNAVAILABLE", f"storage: {_first_line(err)}"))
            return
        if job.image is not None:  # grey, alpha or 16-bit: the encoded-image path, as `sr-tf upscale` splits channels
            yield self._finish_encoded(job)
            return
        shape = job.rows.shape[1:3]
        queue = self._pending.setdefault(shape, [])
        queue.append(job)
        if sum(len(j.rows) for j in queue) >= self._rows_per_call(shape):
            yield from self._flush(shape)

    def _rows_per_call(self, shape) -> int:
        """`batch_size`, fewer for large images (`max_batch_pixels`), at least 1."""
        return max(1, min(self.config.batch_size, self.config.max_batch_pixels // max(1, shape[0] * shape[1])))

    def _existing(self, inst: Instance) -> Outcome | None:
        try:
            if not verify.reusable(self.config.output, inst.output):  # missing, or not as recorded
                return None
            if inst.kind == "tensor":
                text = storage.read_text(inst.output).strip()
                json.loads(text)  # a complete prediction (writes are atomic; check anyway)
                return Outcome(True, inst.key, result_line(inst.instance, text))
        except (OSError, ValueError, *_storage_errors()):
            return None
        return Outcome(True, inst.key, result_line(inst.instance, json.dumps({"output": inst.output})))

    def _prepare(self, inst: Instance) -> _Job:
        from sr_tf.batch.predictor import tensor_rows

        if inst.kind == "tensor":
            rows = tensor_rows(inst.value)
            self._check_pixels(rows.shape[1], rows.shape[2])
            return _Job(inst, rows, None)
        image, metadata = self._decode(inst)
        self._check_pixels(image.shape[0], image.shape[1])  # headers PIL could not size up front
        if image.dtype == np.uint16 or image.shape[-1] != 3:
            return _Job(inst, None, image.shape[-1], image.dtype, image, metadata)
        return _Job(inst, image[np.newaxis].astype(np.float32), 3, image.dtype, metadata=metadata)

    def _check_pixels(self, height: int, width: int) -> None:
        if height * width > self.max_pixels:
            raise ValueError(
                f"image has {width}x{height} = {width * height} pixels, over the limit of "
                f"{self.max_pixels} (max_pixels)"
            )

    def _decode(self, inst: Instance):
        """The instance's `[H, W, C]` pixels and its metadata (None with `strip_metadata`)."""
        from sr_tf.imageio import ImageError, decode_image, read_header, read_metadata

        name = inst.uri or inst.key
        if inst.kind == "image-file":
            if not storage.is_gcs(inst.uri) and not os.path.isfile(inst.uri):
                raise FileNotFoundError(f"{name}: no such file")
            data = storage.read_bytes(inst.uri)
        else:
            data = inst.data
        try:  # the header's size, before any decoder allocates for the pixels
            header = read_header(data, name, max_pixels=None)
            width, height = header.width, header.height
        except ImageError:  # unreadable headers: decode_image names the reason
            width = height = 0
        if width * height > self.max_pixels:
            raise ValueError(f"{name}: image has {width}x{height} = {width * height} pixels, over "
                             f"the limit of {self.max_pixels} (max_pixels)")
        image = decode_image(data, name)
        return image, None if self.config.strip_metadata else read_metadata(data, name)

    # --- batches --------------------------------------------------------------------
    def _flush(self, shape) -> Iterator[Outcome]:
        jobs = self._pending.pop(shape, [])
        if not jobs:
            return
        try:
            outputs = self._run([j.rows for j in jobs])
        except Exception as err:  # one bad batch: retry its jobs alone so only the culprit fails
            if len(jobs) == 1:
                yield Outcome(False, jobs[0].instance.key,
                              error_line(jobs[0].instance.instance, "INTERNAL", f"model failed: {_first_line(err)}"))
                return
            outputs = None
        if outputs is None:
            for job in jobs:
                self._pending[shape] = [job]
                yield from self._flush(shape)
            return
        for job, out in zip(jobs, outputs, strict=True):
            yield self._finish(job, out)

    def _run(self, rows: list[np.ndarray]) -> list[np.ndarray]:
        batch = np.concatenate(rows)
        step = self._rows_per_call(batch.shape[1:3])
        out = []
        for start in range(0, len(batch), step):
            out.append(self._predictor(batch[start : start + step]))
            self.batches.inc()
        result = out[0] if len(out) == 1 else np.concatenate(out)  # one call per batch is the usual case
        split = np.cumsum([len(r) for r in rows])[:-1]
        return np.split(result, split)

    def _finish(self, job: _Job, out: np.ndarray) -> Outcome:
        from sr_tf.imageio import encode_image, format_for

        inst = job.instance
        try:
            if job.channels is None:
                text = json.dumps(out[0].tolist(), separators=(",", ":"))
                self._write(inst.output, text.encode())
                return Outcome(True, inst.key, result_line(inst.instance, text))
            image = np.clip(out[0], 0, 255).astype(np.uint8)
            data = encode_image(image, format_for(inst.output), quality=self.config.quality,
                                metadata=job.output_metadata(image))
            self._write(inst.output, data)
        except (ValueError, OSError) as err:
            return Outcome(False, inst.key, error_line(inst.instance, "INVALID_ARGUMENT", str(err)))
        except _storage_errors() as err:
            return Outcome(False, inst.key, error_line(inst.instance, "UNAVAILABLE", f"storage: {_first_line(err)}"))
        return Outcome(True, inst.key, result_line(inst.instance, json.dumps({"output": inst.output})))

    def _finish_encoded(self, job: _Job) -> Outcome:
        from sr_tf.imageio import decode_image, encode_image, format_for

        inst = job.instance
        try:
            upscaled = self._predictor.encoded(encode_image(job.image, "PNG"))
            self.batches.inc()
            image = decode_image(upscaled, inst.output)
            self._write(inst.output, encode_image(image, format_for(inst.output), quality=self.config.quality,
                                                  metadata=job.output_metadata(image)))
        except (ValueError, OSError) as err:
            return Outcome(False, inst.key, error_line(inst.instance, "INVALID_ARGUMENT", str(err)))
        except _storage_errors() as err:
            return Outcome(False, inst.key, error_line(inst.instance, "UNAVAILABLE", f"storage: {_first_line(err)}"))
        except Exception as err:  # the model failed on this image
            return Outcome(False, inst.key, error_line(inst.instance, "INTERNAL", f"model failed: {_first_line(err)}"))
        return Outcome(True, inst.key, result_line(inst.instance, json.dumps({"output": inst.output})))

    def _write(self, uri: str, data: bytes) -> None:
        ext = os.path.splitext(uri)[1].lower()
        verify.write_output(self.config.output, uri, data, _CONTENT_TYPES.get(ext))
        self.written.inc()
        self._writes += 1
        if self._kill_after and self._writes >= self._kill_after:
            os.kill(os.getpid(), signal.SIGKILL)


def set_progress_hook(hook: Callable[[], None] | None) -> None:
    """`hook()` is called once per finished instance by DoFns running in this process (None: no calls)."""
    global _on_instance
    _on_instance = hook


def _tick() -> None:
    if _on_instance is not None:
        _on_instance()


def _storage_errors() -> tuple[type[BaseException], ...]:
    """Errors of the storage client that fail one instance (retried on a re-run), not the job."""
    try:
        from google.api_core.exceptions import GoogleAPIError
    except ImportError:
        return ()
    return (GoogleAPIError,)


def _first_line(err: Exception) -> str:
    text = getattr(err, "message", None) or str(err)
    return text.strip().splitlines()[0] if text.strip() else type(err).__name__
