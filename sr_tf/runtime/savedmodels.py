"""SavedModels: the one place they are listed, loaded and exported into the cache.

* `list_versions(base)` / `version_path(base, v)` (from `sr_tf.runtime.versions`): TF Serving's layout.
* `load_savedmodel(path)`: `tf.saved_model.load`, a `gs://` SavedModel copied to local disk first.
* `signature_defaults(path)`: the SignatureDefs' default input values (Python's loaded signatures
  require every input; TF Serving fills these in).
* `serving_base(spec)`: the base path to serve for any `--model` (a SavedModel as it is; a catalogue
  name, `.keras` file or checkpoint exported once into `$SR_TF_CACHE_DIR/serving/<name>-<digest>-tile<T>-pad<P>/1`).
"""

from __future__ import annotations

import logging
import os
import tempfile

from sr_tf import storage
from sr_tf.runtime.versions import list_versions, version_path

__all__ = ["list_versions", "load_savedmodel", "serving_base", "signature_defaults", "version_path"]

log = logging.getLogger("sr_tf.runtime")


def load_savedmodel(path: str, tags: tuple[str, ...] | list[str] | None = None):
    """`tf.saved_model.load(path)`; a `gs://` path is downloaded to a temporary folder first.

    The returned object keeps the signatures' variables alive: hold on to it while they are used.
    """
    import tensorflow as tf

    local = path
    if storage.is_gcs(path):
        local = storage.download_tree(path, tempfile.mkdtemp(prefix="sr-tf-model-"))
    return tf.saved_model.load(local, tags=list(tags) if tags else None)


def signature_defaults(path: str) -> dict:
    """`{signature: {input: default array}}` from the `saved_model.pb` at `path` (local or `gs://`),
    for the inputs that have a default (SRMD's `noise_level`); signatures without any are left out."""
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString(storage.read_bytes(storage.join(path.rstrip("/"), "saved_model.pb")))
    out = {}
    for graph in saved.meta_graphs[:1]:
        for key, signature in graph.signature_def.items():
            if signature.defaults:
                out[key] = {name: tf.make_ndarray(value) for name, value in signature.defaults.items()}
    return out


def serving_base(spec: str, tile: int | None = None, tile_pad: int | None = None) -> tuple[str, str]:
    """`(base path, model name)` to serve `spec` from (see the module docstring).

    `tile` / `tile_pad` default to `sr_tf.export.ExportConfig`'s (only for specs that are exported).
    """
    from sr_tf.runtime.specs import cache_key, load_generator, model_spec

    parsed = model_spec(spec)
    if parsed.kind == "savedmodel":
        base = spec.rstrip("/")
        return base, os.path.basename(base) or "model"
    from sr_tf.export import ExportConfig, export_savedmodel
    from sr_tf.pretrained.locate import cache_dir

    defaults = ExportConfig()
    config = ExportConfig(tile_size=defaults.tile_size if tile is None else tile,
                          tile_pad=defaults.tile_pad if tile_pad is None else tile_pad)
    base = cache_dir() / "serving" / f"{cache_key(parsed)}-tile{config.tile_size}-pad{config.tile_pad}"
    if not (base / "1" / "saved_model.pb").is_file():
        log.info("Exporting %s to %s (once; later runs reuse it)", spec, base / "1")
        export_savedmodel(load_generator(parsed), base / "1", config, overwrite=True)
    return str(base), parsed.name
