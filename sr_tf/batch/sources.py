"""What a job reads: input files found from the command line, and the instances inside them.

The driver turns `--input` into `Source`s (one per file: cheap listing, no reading); workers
turn each source into `Instance`s (one per image, JSONL line or TFRecord record) with the place
its prediction goes, so every instance has a stable key and one output.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import os
import posixpath
from collections.abc import Iterator
from typing import Any

from sr_tf import storage
from sr_tf.batch.config import ERRORS_PREFIX, OUTPUT_FORMATS, RESULTS_PREFIX, BatchConfig
from sr_tf.imageio import FORMATS, READABLE_SUFFIXES
from sr_tf.suffixes import TFRECORD_SUFFIXES

JSONL_SUFFIXES = (".jsonl", ".json")
FILE_LIST_SUFFIXES = (".txt", ".list")
TENSOR_SUFFIX = ".json"


@dataclasses.dataclass(frozen=True)
class Source:
    """One input file. `kind`: "image", "jsonl" or "tf-record"; `rel`: its name under the input root."""

    uri: str
    rel: str
    kind: str


@dataclasses.dataclass(frozen=True)
class Instance:
    """One prediction to make.

    Attributes:
      key: unique and stable across runs (the file URI, or `URI#00000007` for a line or record);
        results lines are sorted by it.
      kind: "image-file" (read `uri`), "image-bytes" (`data` holds an encoded image), "tensor"
        (`value` is a JSON `[H, W, 3]` array of pixel values in [0, 255]) or "invalid" (`error`).
      instance: what the results line shows as the instance (the path, or the JSONL value).
      output: where the prediction goes: an image file, or a `.json` file holding the tensor.
    """

    key: str
    kind: str
    instance: Any
    output: str
    uri: str | None = None
    data: bytes | None = None
    value: Any = None
    error: str | None = None


def resolve_format(config: BatchConfig) -> str:
    """The instances format, reading `auto` from the input's extension."""
    if config.instances_format != "auto":
        return config.instances_format
    lower = config.input.lower()
    if lower.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if lower.endswith(TFRECORD_SUFFIXES):
        return "tf-record"
    if lower.endswith(FILE_LIST_SUFFIXES):
        return "file-list"
    return "images"


def _matches(pattern: str) -> tuple[list[str], str]:
    """Files named by a glob, a directory / GCS prefix, or one file; and the root of relative names."""
    if storage.has_glob(pattern):
        return storage.glob(pattern), storage.glob_root(pattern)
    if storage.is_dir(pattern):
        root = "" if pattern == "." else pattern.rstrip("/") + "/"
        return storage.list_files(pattern), root
    if storage.exists(pattern):
        return [pattern], _parent(pattern)
    raise FileNotFoundError(f"`input` matches no file, directory or gs:// prefix. Received: input={pattern!r}")


def _parent(uri: str) -> str:
    cut = uri.rstrip("/").rfind("/")
    return uri[: cut + 1] if cut >= 0 else ""


def _rel(uri: str, root: str) -> str:
    if root and uri.startswith(root):
        return uri[len(root):].lstrip("/")
    if not root and not storage.is_gcs(uri):
        return uri[2:] if uri.startswith("./") else uri
    return posixpath.basename(uri)


def _normalise(uri: str) -> str:
    """gs:// as given; local paths as `pathlib` lists them ("./in/" -> "in", "a//b" -> "a/b")."""
    if storage.is_gcs(uri) or not uri:
        return uri
    return os.path.normpath(str(uri)).replace("\\", "/")


def find_sources(config: BatchConfig) -> list[Source]:
    """The input files of a job (listing only), sorted by URI.

    Raises:
      FileNotFoundError: nothing matches `--input`.
      ValueError: a file list is empty, or two inputs would write the same output.
    """
    fmt = resolve_format(config)
    out_root = _normalise(config.output).rstrip("/") + "/"
    if fmt == "file-list":
        sources = _file_list_sources(config.input)
    else:
        files, root = _matches(_normalise(config.input))
        files = [_normalise(f) for f in files]
        root = _normalise(root).rstrip("/") + "/" if root else ""
        if fmt == "images" and not storage.has_glob(config.input) and len(files) > 1:
            # a directory or prefix: image files only (a glob takes whatever the user named)
            files = [f for f in files if posixpath.splitext(f)[1].lower() in READABLE_SUFFIXES]
        kind = "image" if fmt == "images" else fmt
        sources = [Source(f, _rel(f, root), kind) for f in files]
    # outputs of an earlier run inside the input folder are not inputs
    sources = [s for s in sources if not _normalise(s.uri).startswith(out_root)]
    if not sources:
        raise FileNotFoundError(f"`input` names no {fmt} files. Received: input={config.input!r}")
    _check_unique_outputs(sources, config)
    return sorted(sources, key=lambda s: s.uri)


def _file_list_sources(list_uri: str) -> list[Source]:
    try:
        text = storage.read_text(list_uri)
    except FileNotFoundError:
        raise FileNotFoundError(f"File list not found. Received: input={list_uri!r}") from None
    base = _parent(_normalise(list_uri))
    uris = []
    for line in text.splitlines():
        entry = line.strip()
        if not entry:
            continue
        if not storage.is_gcs(entry) and not entry.startswith("/"):
            entry = (base + entry) if base else entry  # relative to the list's folder
        uris.append(_normalise(entry))
    if not uris:
        raise ValueError(f"The file list names no files. Received: input={list_uri!r}")
    root = _common_dir(uris)
    return [Source(u, _rel(u, root), "image") for u in dict.fromkeys(uris)]


def _common_dir(uris: list[str]) -> str:
    parents = [_parent(u) for u in uris]
    prefix = posixpath.commonprefix(parents)
    cut = prefix.rfind("/")
    return prefix[: cut + 1] if cut >= 0 else ""


def image_output(rel: str, config: BatchConfig) -> str:
    """Relative output name of an input image: same name, the chosen format's extension."""
    ext = OUTPUT_FORMATS[config.output_format]
    if not ext:
        return rel
    return posixpath.splitext(rel)[0] + ext


def _check_unique_outputs(sources: list[Source], config: BatchConfig) -> None:
    seen: dict[str, str] = {}
    reserved = (RESULTS_PREFIX, ERRORS_PREFIX)
    for s in sources:
        name = image_output(s.rel, config) if s.kind == "image" else posixpath.splitext(s.rel)[0]
        if name.startswith(reserved):
            raise ValueError(f"An input is named like a results file; rename it. Received: {s.uri!r}")
        if name in seen:
            raise ValueError(
                f"Two inputs would write the same output {name!r}: {seen[name]!r} and {s.uri!r}. "
                "Use output_format='same', or give the inputs distinct names."
            )
        seen[name] = s.uri


# --- inside workers -------------------------------------------------------------------------
def expand(source: Source, config: BatchConfig) -> Iterator[Instance]:
    """The instances of one source (reads JSONL and TFRecord files; images are read later)."""
    if source.kind == "image":
        yield _image_instance(source, config)
    elif source.kind == "jsonl":
        yield from _jsonl_instances(source, config)
    elif source.kind == "tf-record":
        yield from _tfrecord_instances(source, config)
    else:
        raise ValueError(f"Unknown source kind. Received: kind={source.kind!r}")


def _image_instance(source: Source, config: BatchConfig) -> Instance:
    rel_out = image_output(source.rel, config)
    error = None
    if posixpath.splitext(rel_out)[1].lower() not in FORMATS:
        error = (f"cannot write {posixpath.splitext(rel_out)[1] or 'extensionless'} outputs; "
                 f"use --output-format png, jpeg or webp")
    return Instance(key=source.uri, kind="invalid" if error else "image-file", instance=source.uri,
                    output=storage.join(config.output, rel_out), uri=source.uri, error=error)


def _item_output(source: Source, index: int, config: BatchConfig, ext: str) -> str:
    stem = posixpath.splitext(source.rel)[0]
    return storage.join(config.output, f"{stem}/{index:08d}{ext}")


def _bytes_ext(config: BatchConfig) -> str:
    return OUTPUT_FORMATS[config.output_format] or ".png"


def _jsonl_instances(source: Source, config: BatchConfig) -> Iterator[Instance]:
    key_base = source.uri
    try:
        text = storage.read_text(source.uri)
    except (OSError, UnicodeDecodeError) as err:
        yield Instance(key=key_base, kind="invalid", instance=source.uri,
                       output=_item_output(source, 0, config, TENSOR_SUFFIX),
                       error=f"cannot read JSONL file: {err}")
        return
    index = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        key = f"{key_base}#{index:08d}"
        try:
            value = json.loads(line)
        except ValueError as err:
            yield Instance(key, "invalid", line, _item_output(source, index, config, TENSOR_SUFFIX),
                           error=f"JSON Parse error on line {index + 1}: {err}")
            index += 1
            continue
        yield _json_instance(key, value, source, index, config)
        index += 1


def _json_instance(key: str, value: Any, source: Source, index: int, config: BatchConfig) -> Instance:
    """A JSONL value: `{"b64": ...}` (an encoded image), `{"images": [...]}` or an `[H, W, 3]` array."""
    inner = value
    if isinstance(value, dict) and set(value) == {"images"}:
        inner = value["images"]  # the named-input row form of the serving signature
    if isinstance(inner, dict) and set(inner) == {"b64"}:
        out = _item_output(source, index, config, _bytes_ext(config))
        try:
            data = base64.b64decode(inner["b64"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            return Instance(key, "invalid", value, out, error="Unable to base64 decode")
        return Instance(key, "image-bytes", value, out, data=data)
    out = _item_output(source, index, config, TENSOR_SUFFIX)
    if isinstance(inner, list):
        return Instance(key, "tensor", value, out, value=inner)
    return Instance(key, "invalid", value, out,
                    error="expected an [H, W, 3] array of pixel values, {\"images\": [...]} or {\"b64\": ...}")


def _tfrecord_instances(source: Source, config: BatchConfig) -> Iterator[Instance]:
    import tensorflow as tf

    def records(path: str) -> Iterator[bytes]:
        for r in tf.data.TFRecordDataset(path):
            yield r.numpy()

    tmp = None
    try:
        path = source.uri
        if storage.is_gcs(path):  # TensorFlow's own GCS client does not know the emulator
            import tempfile

            fd, tmp = tempfile.mkstemp(suffix=".tfrecord")
            with open(fd, "wb") as f:
                f.write(storage.read_bytes(path))
            path = tmp
        ext = _bytes_ext(config)
        for index, record in enumerate(records(path)):
            key = f"{source.uri}#{index:08d}"
            out = _item_output(source, index, config, ext)
            shown = {"tfrecord": source.uri, "index": index}
            if config.tfrecord_feature is None:
                yield Instance(key, "image-bytes", shown, out, data=record)
                continue
            data, error = _example_bytes(record, config.tfrecord_feature)
            if error:
                yield Instance(key, "invalid", shown, out, error=error)
            else:
                yield Instance(key, "image-bytes", shown, out, data=data)
    except (OSError, tf.errors.OpError) as err:
        message = getattr(err, "message", None) or str(err)
        yield Instance(f"{source.uri}#file", "invalid", source.uri,
                       _item_output(source, 0, config, TENSOR_SUFFIX),
                       error=f"cannot read TFRecord file: {message.strip().splitlines()[0]}")
    finally:
        if tmp:
            import os

            os.unlink(tmp)


def _example_bytes(record: bytes, feature: str) -> tuple[bytes | None, str | None]:
    import tensorflow as tf

    try:
        example = tf.train.Example.FromString(record)
    except Exception:  # a DecodeError from protobuf
        return None, "record is not a tf.train.Example"
    if feature not in example.features.feature:
        names = sorted(example.features.feature)
        return None, f"record has no feature {feature!r} (features: {names})"
    values = example.features.feature[feature].bytes_list.value
    if len(values) != 1:
        return None, f"feature {feature!r} holds {len(values)} byte strings, expected 1"
    return values[0], None
