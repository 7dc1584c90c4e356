"""Building sharded TFRecords from image folders (DIV2K layout), resumably; verifying them.

`make_tfrecords(BuildConfig(hr_dir=..., output_dir=...))` writes
`{prefix}-{i:05d}-of-{n:05d}.tfrecord` shards and `manifest.json` (see `sr_tf.data.schema`).
Paths may be local or `gs://` (all I/O goes through `tf.io.gfile`).

- Source image `j` (sorted by name) goes to shard `j % num_shards` with all its sub-images,
  so each source is decoded once.
- Each shard is written to `<shard>.partial` and renamed when complete; its record count,
  size, SHA-256 and a fingerprint of what it should contain are then saved in
  `_progress/<shard>.json`. Re-running keeps every shard whose fingerprint matches and
  whose bytes still hash to the saved SHA-256, and rebuilds the others (including one cut
  off mid-write; one damaged after it was complete is named through `log`). The manifest is written last; readers only read the shards it lists.
- Unreadable inputs (empty, not an image, truncated, more than `max_pixels`) are skipped
  and listed with the reason in the manifest (`skipped`, `num_skipped`); inputs whose
  pixels had to be converted to 8-bit RGB PNG are listed in `converted`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import posixpath
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf

from sr_tf.config import ConfigBase
from sr_tf.data import schema
from sr_tf.data.decoding import PASSTHROUGH_FORMATS, encode_png, load_rgb
from sr_tf.imageio import DEFAULT_MAX_PIXELS, ImageError, ImageInfo, read_header
from sr_tf.integrity import check_file, hash_file

PROGRESS_DIR = "_progress"
_HEAD_BYTES = 1 << 16


class CorruptShardError(RuntimeError):
    """A shard that is missing, truncated or altered; `path` names the file."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class BuildConfig(ConfigBase):
    """Options of `make_tfrecords` (and `sr-tf make-tfrecords`).

    Attributes:
      hr_dir: folder of HR images (not recursive; hidden files are ignored, every other
        file is tried as an image and reported if unreadable).
      output_dir: where shards and `manifest.json` go (created if needed).
      lr_dir: optional folder holding DIV2K-style `X2/`, `X3/`, `X4/` LR folders, matched to
        HR files by stem (`0001.png` <-> `X4/0001x4.png` or `X4/0001.png`).
      scales: LR scales to pair; `None` takes every `X<s>` folder found in `lr_dir`.
      num_shards: number of shard files (>= 1).
      prefix: shard name prefix (e.g. "train", "valid").
      sub_image_size: crop HR images into `size x size` sub-images (BasicSR's
        `extract_subimages`; 0 keeps whole images). With LR folders it must be a multiple
        of every scale (and of their least common multiple, as must the step).
      sub_image_step: distance between sub-images (default `sub_image_size // 2`).
      downscale_hr: MATLAB-bicubic downscale HR images by this factor first (e.g. 2 for
        JPEG photos, to hide compression artefacts). Not allowed with `lr_dir`.
      max_pixels: largest accepted image (width * height); bigger ones are skipped (PIL
        itself refuses images over ~179 million pixels, whatever this says).
      png_compress_level: zlib level of re-encoded PNGs (1 = fast; 0-9).
      workers: shards written in parallel (threads).
      progress: show a progress bar.
    """

    hr_dir: str
    output_dir: str
    lr_dir: str | None = None
    scales: tuple[int, ...] | None = None
    num_shards: int = 8
    prefix: str = "train"
    sub_image_size: int = 0
    sub_image_step: int = 0
    downscale_hr: int = 1
    max_pixels: int = DEFAULT_MAX_PIXELS
    png_compress_level: int = 1
    workers: int = 1
    progress: bool = True

    def __post_init__(self):
        if self.scales is not None:
            object.__setattr__(self, "scales", tuple(int(s) for s in self.scales))
            if not self.scales or min(self.scales) < 2:
                raise ValueError(f"BuildConfig.scales must be integers >= 2. Received: scales={self.scales!r}")
        for name in ("num_shards", "downscale_hr", "max_pixels", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"BuildConfig.{name} must be >= 1. Received: {name}={getattr(self, name)!r}")
        if self.sub_image_size < 0 or self.sub_image_step < 0:
            raise ValueError(f"BuildConfig.sub_image_size/step must be >= 0. Received: {self.sub_image_size!r}, {self.sub_image_step!r}")
        if self.sub_image_step and not self.sub_image_size:
            raise ValueError(f"BuildConfig.sub_image_step needs sub_image_size. Received: sub_image_step={self.sub_image_step!r}")
        if not 0 <= self.png_compress_level <= 9:
            raise ValueError(f"BuildConfig.png_compress_level must be in [0, 9]. Received: {self.png_compress_level!r}")
        if self.lr_dir and self.downscale_hr != 1:
            raise ValueError("BuildConfig.downscale_hr would misalign the HR images with the LR folders; use one or the other. "
                             f"Received: lr_dir={self.lr_dir!r}, downscale_hr={self.downscale_hr!r}")
        if not re.fullmatch(r"[A-Za-z0-9_.]+", self.prefix):
            raise ValueError(f"BuildConfig.prefix must be letters, digits, '_' or '.'. Received: prefix={self.prefix!r}")

    @property
    def step(self) -> int:
        return self.sub_image_step or self.sub_image_size // 2


@dataclass
class _Source:
    """One HR input image and what will be written for it."""

    index: int
    name: str  # file name in hr_dir
    size: int  # file size in bytes (part of the shard fingerprint)
    height: int  # after downscale_hr
    width: int
    crops: list[tuple[int, int, int, int]]
    lr: dict[int, tuple[str, int, int]] = field(default_factory=dict)  # scale -> (path, h, w)

    @property
    def stem(self) -> str:
        return posixpath.splitext(self.name)[0]


@dataclass
class BuildResult:
    """What `make_tfrecords` did: the manifest it wrote, shards kept/built, stale shard files found."""

    manifest: dict[str, Any]
    kept: list[str]
    built: list[str]
    stale: list[str]


def _join(directory: str, name: str) -> str:
    return schema.join(directory, name)


def _list_files(directory: str) -> list[str]:
    if not tf.io.gfile.isdir(directory):
        raise FileNotFoundError(f"Not a folder: {directory!r}")
    names = []
    for name in tf.io.gfile.listdir(directory):
        name = name.rstrip("/")
        if name.startswith(".") or tf.io.gfile.isdir(_join(directory, name)):
            continue
        names.append(name)
    return sorted(names)


def _read(path: str, limit: int | None = None) -> bytes:
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read(limit) if limit else f.read()


def _header(path: str, name: str, max_pixels: int) -> tuple[ImageInfo, int]:
    size = tf.io.gfile.stat(path).length
    head = _read(path, _HEAD_BYTES) if size else b""
    try:
        return read_header(head, name, max_pixels), size
    except ImageError:
        if size <= _HEAD_BYTES:
            raise
        return read_header(_read(path), name, max_pixels), size  # e.g. a JPEG with a large EXIF block


def _positions(length: int, size: int, step: int, align: int) -> list[int]:
    """BasicSR's sub-image starts (`0, step, ...` plus a last one flush with the end), multiples of `align`."""
    if size >= length:
        return [0]
    starts = list(range(0, length - size + 1, step))
    last = (length - size) // align * align
    if last > starts[-1]:
        starts.append(last)
    return starts


def _crops(height: int, width: int, config: BuildConfig, align: int) -> list[tuple[int, int, int, int]]:
    if not config.sub_image_size:
        return [(0, 0, height, width)]
    size, step = config.sub_image_size, config.step
    ch, cw = min(size, height), min(size, width)
    return [(top, left, ch, cw) for top in _positions(height, size, step, align) for left in _positions(width, size, step, align)]


def _lr_folders(config: BuildConfig) -> dict[int, str]:
    if not config.lr_dir:
        return {}
    found = {}
    for name in tf.io.gfile.listdir(config.lr_dir):
        match = re.fullmatch(r"[Xx](\d+)/?", name)
        if match and tf.io.gfile.isdir(_join(config.lr_dir, name.rstrip("/"))):
            found[int(match.group(1))] = _join(config.lr_dir, name.rstrip("/"))
    scales = config.scales or tuple(sorted(found))
    missing = [s for s in scales if s not in found]
    if missing or not scales:
        raise FileNotFoundError(
            f"{config.lr_dir!r} has no LR folder for scale(s) {missing or '(any)'}; expected DIV2K-style X2/, X3/, X4/ "
            f"folders. Found: {sorted(found) or 'none'}"
        )
    return {s: found[s] for s in scales}


def _match_lr(stem: str, scale: int, names: dict[str, str]) -> str | None:
    """The LR file for an HR stem: `stem`, `stem x{scale}` or NTIRE's `stem x{scale}{letter}`."""
    for candidate in (f"{stem}x{scale}", stem):
        if candidate in names:
            return names[candidate]
    for lr_stem, name in names.items():
        if re.fullmatch(re.escape(stem) + rf"x{scale}[a-z]", lr_stem):
            return name
    return None


def scan(config: BuildConfig, on_skip: Callable[[str, str], None] | None = None) -> tuple[list[_Source], list[dict[str, str]]]:
    """Lists and inspects the inputs (headers only) and plans the records of each image.

    Returns:
      `(sources, skipped)`: usable sources in name order and `{"name", "reason"}` for the others.
    """
    lr_folders = _lr_folders(config)
    lr_names = {s: {posixpath.splitext(n)[0]: n for n in _list_files(folder)} for s, folder in lr_folders.items()}
    align = math.lcm(*lr_folders) if lr_folders else 1
    if config.sub_image_size and (config.sub_image_size % align or config.step % align):
        raise ValueError(f"sub_image_size and sub_image_step must be multiples of {align} to keep LR crops aligned "
                         f"with scales {sorted(lr_folders)}. Received: {config.sub_image_size}, {config.step}")
    sources, skipped = [], []

    def skip(name, reason):
        skipped.append({"name": name, "reason": reason})
        if on_skip:
            on_skip(name, reason)

    for name in _list_files(config.hr_dir):
        try:
            info, size = _header(_join(config.hr_dir, name), name, config.max_pixels)
        except ImageError as e:
            skip(name, str(e))
            continue
        height, width = info.height, info.width
        if info.orientation in (5, 6, 7, 8):  # EXIF rotations swap the axes
            height, width = width, height
        d = config.downscale_hr
        height, width = -(-height // d), -(-width // d)
        source = _Source(len(sources), name, size, height, width, _crops(height, width, config, align))
        problem = None
        for scale, folder in lr_folders.items():
            lr_name = _match_lr(source.stem, scale, lr_names[scale])
            if lr_name is None:
                problem = f"{name}: no LR image for x{scale} in {folder}"
                break
            try:
                lr_info, _ = _header(_join(folder, lr_name), f"X{scale}/{lr_name}", config.max_pixels)
            except ImageError as e:
                problem = f"{name}: LR image unreadable: {e}"
                break
            ok_h = lr_info.height in (height // scale, -(-height // scale))
            ok_w = lr_info.width in (width // scale, -(-width // scale))
            if not (ok_h and ok_w):
                problem = (f"{name}: LR image X{scale}/{lr_name} is {lr_info.width}x{lr_info.height}, expected about "
                           f"{width / scale:g}x{height / scale:g} for a {width}x{height} HR image")
                break
            source.lr[scale] = (_join(folder, lr_name), lr_info.height, lr_info.width)
        if problem:
            skip(name, problem)
            continue
        sources.append(source)
    return sources, skipped


def _fingerprint(config: BuildConfig, sources: list[_Source]) -> str:
    options = {
        "schema_version": schema.SCHEMA_VERSION,
        "downscale_hr": config.downscale_hr,
        "png_compress_level": config.png_compress_level,
        "max_pixels": config.max_pixels,
        "sources": [[s.name, s.size, s.crops, sorted((k, posixpath.basename(v[0])) for k, v in s.lr.items())] for s in sources],
    }
    return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()


def _write_text_atomic(path: str, text: str) -> None:
    tmp = path + ".partial"
    with tf.io.gfile.GFile(tmp, "w") as f:
        f.write(text)
    tf.io.gfile.rename(tmp, path, overwrite=True)


def _open_writer(path: str):
    """The TFRecord writer (a seam for tests that simulate an interrupted build)."""
    return tf.io.TFRecordWriter(path)


def _downscale(array: np.ndarray, factor: int) -> np.ndarray:
    from sr_tf.data.degradations import bicubic_downscale

    out = bicubic_downscale(tf.constant(array, tf.float32) / 255.0, factor)
    return tf.cast(tf.round(tf.clip_by_value(out, 0.0, 1.0) * 255.0), tf.uint8).numpy()


def _records_for(source: _Source, config: BuildConfig, notes: list[dict[str, str]]) -> list[bytes]:
    """Every serialized record of one source (all or nothing: raises ImageError)."""
    path = _join(config.hr_dir, source.name)
    data = _read(path)
    info = read_header(data, source.name, config.max_pixels)
    pixels = load_rgb(data, source.name, config.max_pixels)  # also proves the data is complete
    whole = not config.sub_image_size and config.downscale_hr == 1
    if whole and not info.passthrough:
        notes.append({"name": source.name, "from": f"{info.format} {info.mode}" + (f" EXIF orientation {info.orientation}" if info.orientation not in (0, 1) else ""), "to": "PNG RGB"})
    if config.downscale_hr > 1:
        pixels = _downscale(pixels, config.downscale_hr)
    lr_pixels, lr_raw = {}, {}
    for scale, (lr_path, _, _) in source.lr.items():
        lr_data = _read(lr_path)
        lr_name = f"X{scale}/{posixpath.basename(lr_path)}"
        lr_info = read_header(lr_data, lr_name, config.max_pixels)
        lr_pixels[scale] = load_rgb(lr_data, lr_name, config.max_pixels)
        lr_raw[scale] = (lr_data, lr_info)
    records = []
    for i, (top, left, h, w) in enumerate(source.crops):
        name = source.stem if len(source.crops) == 1 and not config.sub_image_size else f"{source.stem}_s{i + 1:03d}"
        if whole and info.passthrough:
            hr, fmt = data, PASSTHROUGH_FORMATS[info.format]
        else:
            hr, fmt = encode_png(pixels[top : top + h, left : left + w], config.png_compress_level), "png"
        lr = {}
        for scale, array in lr_pixels.items():
            lr_data, lr_info = lr_raw[scale]
            if whole and lr_info.passthrough:
                lr[scale] = (lr_data, PASSTHROUGH_FORMATS[lr_info.format], array.shape[0], array.shape[1])
            elif whole:
                lr[scale] = (encode_png(array, config.png_compress_level), "png", array.shape[0], array.shape[1])
            else:
                crop = array[top // scale : (top + h) // scale, left // scale : (left + w) // scale]
                lr[scale] = (encode_png(crop, config.png_compress_level), "png", crop.shape[0], crop.shape[1])
        hr_h, hr_w = (pixels.shape[0], pixels.shape[1]) if whole else (h, w)
        records.append(schema.serialize_example(hr, fmt, hr_h, hr_w, name, source.name, (top, left, hr_h, hr_w), lr))
    return records


def _shard_problem(config: BuildConfig, entry: dict[str, Any] | None, fingerprint: str) -> str | None:
    """None when an earlier build's shard can be kept; else why not ("not built", "built from other
    inputs or options", or what is wrong with its bytes: "truncated: ...", "corrupt: ...")."""
    if not entry:
        return "not built"
    if entry.get("fingerprint") != fingerprint:
        return "built from other inputs or options"
    return check_file(_join(config.output_dir, entry["file"]), entry)


def _write_shard(config: BuildConfig, index: int, file: str, sources: list[_Source], fingerprint: str, tick: Callable[[], None]) -> dict[str, Any]:
    path = _join(config.output_dir, file)
    tmp = path + ".partial"
    skipped, converted, record_sizes = [], [], []
    count, min_h, min_w = 0, None, None
    writer = _open_writer(tmp)
    try:
        for source in sources:
            try:
                records = _records_for(source, config, converted)
            except ImageError as e:
                skipped.append({"name": source.name, "reason": str(e)})
                records = []
            for record in records:
                writer.write(record)
                record_sizes.append(len(record))
            count += len(records)
            if records:
                min_h = min(c[2] for c in source.crops) if min_h is None else min(min_h, *(c[2] for c in source.crops))
                min_w = min(c[3] for c in source.crops) if min_w is None else min(min_w, *(c[3] for c in source.crops))
            tick()
    finally:
        writer.close()
    size, sha = hash_file(tmp)
    tf.io.gfile.rename(tmp, path, overwrite=True)
    entry = {"file": file, "index": index, "records": count, "bytes": size, "sha256": sha, "fingerprint": fingerprint,
             "skipped": skipped, "converted": converted, "min_height": min_h, "min_width": min_w,
             "record_sizes": record_sizes}
    _write_text_atomic(_join(_join(config.output_dir, PROGRESS_DIR), file + ".json"), json.dumps(entry))
    return entry


def _previous_entries(config: BuildConfig, log: Callable[[str], None] | None = None) -> dict[str, dict[str, Any]]:
    """Shard entries of an earlier (possibly interrupted) run: progress files, then the manifest."""
    entries: dict[str, dict[str, Any]] = {}
    manifest_path = _join(config.output_dir, schema.MANIFEST_NAME)
    if tf.io.gfile.exists(manifest_path):
        try:
            with tf.io.gfile.GFile(manifest_path, "r") as f:
                for entry in json.load(f).get("shards", []):
                    entries[entry["file"]] = entry
        except (ValueError, KeyError, TypeError, AttributeError):
            if log:  # rewritten at the end; its shards cannot be checked, so they are written again
                log(f"{manifest_path} of an earlier build is unreadable (truncated or overwritten); "
                    "writing every shard not recorded elsewhere again")
    progress = _join(config.output_dir, PROGRESS_DIR)
    if tf.io.gfile.isdir(progress):
        for name in tf.io.gfile.listdir(progress):
            if not name.endswith(".json"):
                continue
            try:
                with tf.io.gfile.GFile(_join(progress, name), "r") as f:
                    entry = json.load(f)
                entries[entry["file"]] = entry
            except (ValueError, KeyError, TypeError):
                continue
    return entries


def make_tfrecords(config: BuildConfig, log: Callable[[str], None] | None = None) -> BuildResult:
    """Builds (or resumes building) sharded TFRecords and the manifest; see the module docstring.

    Args:
      config: what to read and how to write it.
      log: called with one line per skipped input (e.g. `print` to stderr).

    Returns:
      A `BuildResult`; `result.manifest` is what `manifest.json` holds.

    Raises:
      FileNotFoundError: a missing input folder or LR scale folder.
    """
    sources, skipped = scan(config, on_skip=(lambda n, r: log(f"skipped {r}")) if log else None)
    tf.io.gfile.makedirs(_join(config.output_dir, PROGRESS_DIR))
    n = config.num_shards
    files = [schema.shard_name(config.prefix, i, n) for i in range(n)]
    plan = [[s for s in sources if s.index % n == i] for i in range(n)]
    fingerprints = [_fingerprint(config, shard_sources) for shard_sources in plan]
    previous = _previous_entries(config, log)
    entries: list[dict[str, Any] | None] = [None] * n
    kept, todo = [], []
    for i in range(n):
        entry = previous.get(files[i])
        problem = _shard_problem(config, entry, fingerprints[i])
        if problem is None:
            entries[i] = entry
            kept.append(files[i])
        else:
            todo.append(i)
            if log and problem not in ("not built", "built from other inputs or options", "missing"):
                log(f"{_join(config.output_dir, files[i])}: shard of an earlier build is {problem}; writing it again")
    lock = threading.Lock()
    bar = None
    if config.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(len(plan[i]) for i in todo), unit="img", desc="make-tfrecords")

    def tick():
        if bar is not None:
            with lock:
                bar.update(1)

    def build(i):
        entries[i] = _write_shard(config, i, files[i], plan[i], fingerprints[i], tick)
        if log:
            for item in entries[i]["skipped"]:
                log(f"skipped {item['reason']}")

    try:
        if config.workers == 1:
            for i in todo:
                build(i)
        else:
            with ThreadPoolExecutor(max_workers=config.workers) as pool:
                list(pool.map(build, todo))
    finally:
        if bar is not None:
            bar.close()
    done = [e for e in entries if e is not None]
    all_skipped = skipped + [item for e in done for item in e["skipped"]]
    mins_h = [e["min_height"] for e in done if e.get("min_height")]
    mins_w = [e["min_width"] for e in done if e.get("min_width")]
    manifest = {
        "format": schema.FORMAT_NAME,
        "schema_version": schema.SCHEMA_VERSION,
        "build": {k: v for k, v in dataclasses.asdict(config).items() if k not in ("workers", "progress")},
        "lr_scales": sorted({s for src in sources for s in src.lr}),
        "num_records": sum(e["records"] for e in done),
        "num_images": sum(len(p) for p in plan) - sum(len(e["skipped"]) for e in done),
        "num_skipped": len(all_skipped),
        "skipped": all_skipped,
        "converted": [item for e in done for item in e["converted"]],
        "min_height": min(mins_h) if mins_h else None,
        "min_width": min(mins_w) if mins_w else None,
        "shards": [{k: e[k] for k in ("file", "index", "records", "bytes", "sha256", "fingerprint", "skipped", "converted",
                                     "min_height", "min_width", "record_sizes") if k in e} for e in done],
    }
    _write_text_atomic(_join(config.output_dir, schema.MANIFEST_NAME), json.dumps(manifest, indent=1))
    progress = _join(config.output_dir, PROGRESS_DIR)
    if tf.io.gfile.isdir(progress):
        tf.io.gfile.rmtree(progress)
    pattern = re.compile(re.escape(config.prefix) + r"-\d{5}-of-\d{5}\.tfrecord(\.partial)?")
    stale = sorted(f for f in _list_files(config.output_dir) if pattern.fullmatch(f) and f not in files)
    return BuildResult(manifest, kept, [files[i] for i in todo], stale)


def shard_paths(directory: str, manifest: dict[str, Any] | None = None) -> list[str]:
    """Full paths of the shards a manifest lists, in order."""
    manifest = manifest or schema.read_manifest(directory)
    return [_join(directory, s["file"]) for s in manifest["shards"]]


def verify_records(directory: str, checksum: bool = True, manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """Checks every shard of a records folder against its manifest.

    Args:
      directory: records folder (local or `gs://`).
      checksum: also compare SHA-256 (reads every byte); otherwise sizes only (cheap).
      manifest: an already loaded manifest.

    Returns:
      The manifest.

    Raises:
      CorruptShardError: the first missing, truncated or altered shard, naming the file.
    """
    manifest = manifest or schema.read_manifest(directory)
    for entry in manifest["shards"]:
        path = _join(directory, entry["file"])
        if not tf.io.gfile.exists(path):
            raise CorruptShardError(path, "shard listed in the manifest is missing")
        size = tf.io.gfile.stat(path).length
        if size != entry["bytes"]:
            kind = "truncated" if size < entry["bytes"] else "longer than expected"
            raise CorruptShardError(path, f"shard is {kind}: {size} bytes, the manifest says {entry['bytes']}")
        if checksum and hash_file(path)[1] != entry["sha256"]:
            raise CorruptShardError(path, "shard is corrupt: its SHA-256 differs from the manifest's")
    return manifest
