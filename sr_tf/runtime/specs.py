"""`--model SPEC` -> what it names, and the Keras generator it is: the one home of model specs.

A spec is one of
* a catalogue name (`sr-tf models` lists them; converted from ncnn files once and cached);
* a `.keras` file, local or `gs://`;
* a PyTorch checkpoint (`.pth`, `.pt`, `.ckpt`, `.safetensors`), local or `gs://`, converted by
  `sr_tf.checkpoints` (no code in the file runs) and cached by the file's SHA-256;
* a SavedModel directory (`saved_model.pb` inside), or a TF Serving base path of integer versions
  (its newest version), local or `gs://`.

`model_spec(spec)` classifies without loading TensorFlow models (cheap, for up-front checks);
`load_generator(spec)` returns the Keras generator (`[N, H, W, 3] float32 in [0, 1]` ->
`[N, sH, sW, 3]`) for every kind except SavedModels, which `sr_tf.runtime.savedmodels` loads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
from pathlib import Path

from sr_tf import storage
from sr_tf.integrity import atomic_write

KERAS_SUFFIX = ".keras"
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors")
KINDS = ("catalogue", "keras", "checkpoint", "savedmodel")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A classified `--model` argument.

    Attributes:
      text: what the user gave.
      kind: one of `KINDS`.
      location: the catalogue name, the file, or the SavedModel version directory to load.
    """

    text: str
    kind: str
    location: str

    @property
    def name(self) -> str:
        """A short display name: the catalogue name, the file's stem, or the SavedModel's model folder."""
        if self.kind == "catalogue":
            return self.location
        path = self.location.rstrip("/")
        if self.kind == "savedmodel":
            parts = path.split("/")
            return parts[-2] if len(parts) > 1 and parts[-1].isdigit() else parts[-1]
        return os.path.splitext(os.path.basename(path))[0]


def _catalogue():
    from sr_tf.pretrained.entries import CATALOGUE

    return CATALOGUE


def _newest_version(base: str) -> str | None:
    from sr_tf.runtime.versions import list_versions, version_path

    versions = list_versions(base)
    return version_path(base, versions[-1]) if versions else None


def model_spec(spec: str) -> ModelSpec:
    """Classifies `spec` (see the module docstring); checks that its file or folder exists.

    Raises:
      FileNotFoundError: a path that does not exist (or a folder with no SavedModel in it).
      ValueError: `spec` is none of the kinds; the message lists them.
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"model must be a non-empty string. Received: model={spec!r}")
    catalogue = _catalogue()
    if spec in catalogue:
        return ModelSpec(spec, "catalogue", spec)
    lower = spec.lower()
    is_file_kind = lower.endswith(KERAS_SUFFIX) or lower.endswith(CHECKPOINT_SUFFIXES)
    kind = "keras" if lower.endswith(KERAS_SUFFIX) else "checkpoint"
    if storage.is_gcs(spec):
        if is_file_kind:
            if not storage.exists(spec):
                raise FileNotFoundError(f"model: no such object: {spec!r}")
            return ModelSpec(spec, kind, spec)
        newest = _newest_version(spec.rstrip("/"))
        if newest is None:
            raise FileNotFoundError(f"model: no saved_model.pb under {spec!r} (nor integer version folders holding one)")
        return ModelSpec(spec, "savedmodel", newest)
    if os.path.isdir(spec):
        newest = _newest_version(spec.rstrip("/") or "/")
        if newest is None:
            raise FileNotFoundError(f"model: {spec!r} is a directory without saved_model.pb (not a SavedModel)")
        return ModelSpec(spec, "savedmodel", newest)
    if is_file_kind:
        if not os.path.isfile(spec):
            raise FileNotFoundError(f"model: no such file: {spec!r}")
        return ModelSpec(spec, kind, spec)
    import difflib

    suffixes = ", ".join((KERAS_SUFFIX, *CHECKPOINT_SUFFIXES))
    near = difflib.get_close_matches(spec, list(catalogue), n=3)
    hint = (f" Did you mean {' or '.join(map(repr, near))}?" if near
            else f" The catalogue's models: {', '.join(sorted(catalogue))}.")
    raise ValueError(f"model {spec!r} is neither a catalogue model, a model file ({suffixes}) nor a "
                     f"SavedModel directory.{hint}")


def local_file(uri: str) -> str:
    """A local path for `uri`: itself when local, else a download into a private temporary file
    (same suffix) that the caller may delete."""
    if not storage.is_gcs(uri):
        return uri
    fd, local = tempfile.mkstemp(prefix="sr-tf-model-", suffix=os.path.splitext(uri)[1])
    with os.fdopen(fd, "wb") as f:
        f.write(storage.read_bytes(uri))
    return local


def file_digest(path: str | os.PathLike) -> str:
    """The first 16 hex digits of the file's SHA-256 (cache keys)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def cache_key(spec: ModelSpec) -> str:
    """`<name>-<digest>`: changes when the weights change (for the export and conversion caches)."""
    if spec.kind == "catalogue":
        from sr_tf.runtime.catalogue import cached_path

        return cached_path(spec.location).stem
    if spec.kind == "savedmodel":
        raise ValueError(f"a SavedModel is used as it is, not cached. Received: model={spec.text!r}")
    local = local_file(spec.location)
    try:
        return f"{spec.name}-{file_digest(local)}"
    finally:
        if local != spec.location:
            os.unlink(local)


def load_generator(spec: str | ModelSpec):
    """The Keras generator `spec` names (catalogue name, `.keras` file, PyTorch checkpoint).

    Raises:
      ValueError: a SavedModel spec (it has no Keras model: serve or batch-run it as it is), or a
        spec of no known kind. FileNotFoundError: a missing file.
      sr_tf.checkpoints.CheckpointError: a checkpoint that cannot be read or recognised.
    """
    import keras

    import sr_tf.models  # noqa: F401  (registers the classes .keras files name)

    spec = spec if isinstance(spec, ModelSpec) else model_spec(spec)
    if spec.kind == "catalogue":
        from sr_tf.runtime.catalogue import load_pretrained

        return load_pretrained(spec.location)
    if spec.kind == "savedmodel":
        raise ValueError("model: a SavedModel has no Keras generator to load here; give a .keras file, a "
                         f"checkpoint or a catalogue name. Received: model={spec.text!r}")
    local = local_file(spec.location)
    try:
        if spec.kind == "keras":
            return keras.saving.load_model(local, compile=False)
        return _load_checkpoint(local)
    finally:
        if local != spec.location:
            os.unlink(local)


def _load_checkpoint(path: str):
    """A checkpoint's Keras model, converted once and cached as `.keras` (keyed by the file's SHA-256)."""
    import keras

    from sr_tf.checkpoints import load_checkpoint
    from sr_tf.pretrained.locate import cache_dir

    cached = cache_dir() / "checkpoints" / f"{Path(path).stem}-{file_digest(path)}.keras"
    if cached.is_file():
        try:
            return keras.saving.load_model(cached, compile=False)
        except Exception:  # noqa: BLE001 - a damaged cache entry is rebuilt, never trusted
            cached.unlink(missing_ok=True)
    model, _ = load_checkpoint(path)
    atomic_write(cached, model.save)
    return model
