"""TF Serving's model layout: `BASE/VERSION/saved_model.pb`, VERSION a positive integer.

A base that is itself a SavedModel (as Vertex AI's `AIP_STORAGE_URI` often is) counts as version 1.
Paths go through `tf.io.gfile`, so `gs://` and other TF file systems work too.
"""

from __future__ import annotations

import os


def list_versions(base_path: str) -> list[int]:
    """Integer-named sub-directories of `base_path` holding a saved_model.pb.

    A base path that is itself a SavedModel (as Vertex AI's `AIP_STORAGE_URI` often is) counts as
    version 1. Paths go through `tf.io.gfile`, so `gs://` and other TF file systems work too.
    """
    import tensorflow as tf

    gfile = tf.io.gfile
    try:
        entries = [e.rstrip("/") for e in gfile.listdir(base_path)]
    except tf.errors.NotFoundError:
        return []
    versions = sorted(
        int(e) for e in entries
        if e.isdigit() and int(e) > 0 and gfile.exists(os.path.join(base_path, e, "saved_model.pb"))
    )
    if not versions and "saved_model.pb" in entries:
        return [1]
    return versions


def version_path(base_path: str, version: int) -> str:
    """The folder of one version (the base path itself when it is a bare SavedModel)."""
    import tensorflow as tf

    candidate = os.path.join(base_path, str(version))
    if tf.io.gfile.isdir(candidate):
        return candidate
    try:  # a zero-padded name ("00000123"), which TF Serving reads as version 123 too
        padded = [e.rstrip("/") for e in tf.io.gfile.listdir(base_path)
                  if e.rstrip("/").isdigit() and int(e.rstrip("/")) == int(version)]
    except tf.errors.NotFoundError:
        padded = []
    if padded:
        return os.path.join(base_path, padded[0])
    if tf.io.gfile.exists(os.path.join(base_path, "saved_model.pb")):
        return base_path
    return candidate
