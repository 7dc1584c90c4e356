"""The manager that loads, swaps and unloads servables (`sr_tf.serving.servable`) of the configured
models (`sr_tf.serving.model_config`).

The manager follows TF Serving's file-system source: each model has a base path whose integer
sub-directories are versions; a version policy (`latest` N, `all`, `specific`) picks which to
serve; a poll thread picks up new directories while running. A version that fails to load (or
to warm up) is retried as TF Serving retries (`max_num_load_retries` more times,
`load_retry_interval_micros` apart), so a version directory still being copied loads once the copy
is complete; one that still fails is reported with state END and its error, and is tried again
when its files change. The versions already serving keep serving meanwhile. Requests hold a
reference to the servable they resolved, so unloading never fails a request in flight.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading

from sr_tf.runtime.savedmodels import list_versions, version_path
from sr_tf.serving.batching import BatchingConfig, model_batching
from sr_tf.serving.errors import Code, ServingError, invalid
from sr_tf.serving.model_config import (
    ModelConfig,
    parse_model_config_file,
    parse_model_config_text,
    resolve_model,
)
from sr_tf.serving.servable import (
    DEFAULT_SIGNATURE,
    PREDICT_METHOD,
    Servable,
    Signature,
    first_line,
)

log = logging.getLogger("sr_tf.serving")

# The names this module held before the split, for callers that import them from here.
__all__ = ["DEFAULT_SIGNATURE", "PREDICT_METHOD", "ModelConfig", "ModelManager", "Servable", "Signature",
           "VersionState", "no_versions_message", "parse_model_config_file", "parse_model_config_text",
           "resolve_model"]

def _fingerprint(path: str) -> tuple:
    """(name, size, mtime) of a version's saved_model.pb, batching_params.pbtxt and variables files:
    it changes while a copy goes on, and when the version is rewritten."""
    import tensorflow as tf

    from sr_tf.export import BATCHING_PARAMS_FILE

    files = [os.path.join(path, "saved_model.pb"), os.path.join(path, BATCHING_PARAMS_FILE)]
    try:
        files += sorted(tf.io.gfile.glob(os.path.join(path, "variables", "*")))
    except tf.errors.OpError:
        pass
    out = []
    for f in files:
        try:
            st = tf.io.gfile.stat(f)
            out.append((os.path.basename(f), st.length, st.mtime_nsec))
        except tf.errors.OpError:
            out.append((os.path.basename(f), -1, -1))
    return tuple(out)


@dataclasses.dataclass
class VersionState:
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END
    error_code: str = "OK"
    error_message: str = ""


def no_versions_message(config: ModelConfig) -> str | None:
    """Why `config` serves nothing (its base path is missing, or holds no version), or None.

    TF Serving logs "No versions of servable X found under base path Y" in this case; the server
    keeps polling, so the model appears once a version is written there.
    """
    import tensorflow as tf

    if list_versions(config.base_path):
        return None
    if not tf.io.gfile.exists(config.base_path):
        return (f"Model {config.name!r}: base path {config.base_path} does not exist; nothing is served "
                "for it until a version folder (BASE/1/saved_model.pb, from `sr-tf export`) appears there")
    return (f"Model {config.name!r}: no versions found under base path {config.base_path} (version folders "
            "are named by a number and hold saved_model.pb, e.g. BASE/1/ from `sr-tf export`)")


class ModelManager:
    """Loads the models of a config, polls their base paths and resolves requests to servables.

    Args:
      configs: the models to serve.
      poll_seconds: how often base paths are re-scanned (0 disables the poll thread).
      warmup: replay each version's warmup requests before it serves.
      load_retries: further attempts after a failed load (TF Serving's `max_num_load_retries`).
      load_retry_interval: seconds between attempts (`load_retry_interval_micros` / 1e6).
      warmup_iterations: times each warmup request is replayed.
      tags: the SavedModel MetaGraph tags to load (`--saved_model_tags`).
      batching / per_model_batching: the server-wide batching, and whether each version's own
        `batching_params.pbtxt` replaces it (`--enable_per_model_batching_parameters`; see
        `sr_tf.serving.batching.model_batching`). A file that does not parse fails the version's load.
    """

    def __init__(self, configs: list[ModelConfig], poll_seconds: float = 1.0, warmup: bool = True,
                 load_retries: int = 5, load_retry_interval: float = 60.0, warmup_iterations: int = 1,
                 tags: tuple[str, ...] = ("serve",), batching: BatchingConfig | None = None,
                 per_model_batching: bool = False):
        self._lock = threading.RLock()
        self._sync_lock = threading.Lock()  # one poll (or reload) at a time
        self._configs = {c.name: c for c in configs}
        self._servables: dict[str, dict[int, Servable]] = {c.name: {} for c in configs}
        self._states: dict[str, dict[int, VersionState]] = {c.name: {} for c in configs}
        self._failed: dict[tuple[str, int], float] = {}
        self.poll_seconds = poll_seconds
        self.warmup = warmup
        self.load_retries = max(0, int(load_retries))
        self.load_retry_interval = float(load_retry_interval)
        self.warmup_iterations = warmup_iterations
        self.tags = tuple(tags)
        self.batching = batching or BatchingConfig()
        self.per_model_batching = bool(per_model_batching)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self.poll_once()
        with self._lock:
            configs = list(self._configs.values())
        for config in configs:
            message = no_versions_message(config)
            if message:
                log.warning(message)
        if self.poll_seconds > 0:
            self._thread = threading.Thread(target=self._poll_loop, name="sr-tf-model-poll", daemon=True)
            self._thread.start()

    @property
    def stopped(self) -> threading.Event:
        return self._stop

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll_once()
            except Exception:  # keep polling; the error is logged
                log.exception("Polling the model base paths failed")

    def reload_config(self, configs: list[ModelConfig]) -> None:
        """Replaces the served models (gRPC `HandleReloadConfigRequest`)."""
        with self._lock:
            self._configs = {c.name: c for c in configs}
            for c in configs:
                self._servables.setdefault(c.name, {})
                self._states.setdefault(c.name, {})
            for name in list(self._servables):
                if name not in self._configs:
                    for v in self._servables.pop(name):
                        self._states[name][v] = VersionState("END")
        self.poll_once()

    def poll_once(self) -> None:
        """Loads newly aspired versions and unloads versions no longer aspired."""
        with self._sync_lock:
            with self._lock:
                configs = list(self._configs.values())
            for config in configs:
                self._sync_model(config)

    def _sync_model(self, config: ModelConfig) -> None:
        on_disk = list_versions(config.base_path)
        usable = [v for v in on_disk if not self._is_failed(config, v)]
        aspired = config.aspired(usable)
        loaded = set(self._servables.get(config.name, {}))
        for version in sorted(aspired - loaded):
            if not self._load(config, version):
                # A broken new version: keep serving what we have, re-plan without it.
                return self._sync_model(config)
        with self._lock:
            for version in loaded - aspired:
                self._states[config.name][version] = VersionState("UNLOADING")
                self._servables[config.name].pop(version, None)
                self._states[config.name][version] = VersionState("END")
                log.info("Unloaded %s version %d", config.name, version)

    def _is_failed(self, config: ModelConfig, version: int) -> bool:
        key = (config.name, version)
        if key not in self._failed:
            return False
        path = version_path(config.base_path, version)
        return _fingerprint(path) == self._failed[key]  # changed files get another try

    def _load(self, config: ModelConfig, version: int) -> bool:
        """Loads (and warms up) one version, retrying failed attempts; False if it never loaded."""
        path = version_path(config.base_path, version)
        states = self._states[config.name]
        states[version] = VersionState("LOADING")
        log.info("Loading %s version %d from %s", config.name, version, path)
        attempt = 0
        while True:
            try:
                batching = model_batching(path, self.batching, self.per_model_batching)
                servable = Servable(config.name, version, path, self.tags, batching)
                if self.warmup:
                    servable.warm_up(self.warmup_iterations)
                break
            except Exception as err:  # any load failure is reported, never fatal
                message = f"Failed to load {config.name} version {version} from {path}: {first_line(err)}"
                if attempt < self.load_retries and not self._stop.is_set():
                    attempt += 1
                    log.warning("%s; retry %d of %d in %g s", message, attempt, self.load_retries,
                                max(0.0, self.load_retry_interval))
                    if self.load_retry_interval > 0:
                        self._stop.wait(self.load_retry_interval)  # a stop cuts the wait short
                    continue
                log.error(message)
                states[version] = VersionState("END", "UNKNOWN", message)
                self._failed[(config.name, version)] = _fingerprint(path)
                return False
        with self._lock:
            self._servables[config.name][version] = servable
            states[version] = VersionState("AVAILABLE")
        log.info("Serving %s version %d", config.name, version)
        return True

    # --- queries --------------------------------------------------------------------------
    def config(self, name: str) -> ModelConfig | None:
        """The configuration of a served model (None: not configured)."""
        with self._lock:
            return self._configs.get(name)

    def model_names(self) -> list[str]:
        with self._lock:
            return list(self._configs)

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable a request names, with TF Serving's errors (server_core.cc
        `ServableRequestFromModelSpec`): no name or an unknown label is INVALID_ARGUMENT, a model
        or version not served is NOT_FOUND."""
        if not name:
            raise invalid("ModelSpec has no name specified.")
        with self._lock:
            versions = self._servables.get(name)
            config = self._configs.get(name)
            if label:
                if config is None or label not in config.labels:
                    raise invalid(f"Unrecognized servable version label: {label}")
                version = config.labels[label]
            if version is not None:
                servable = (versions or {}).get(int(version))
                if servable is None:
                    raise ServingError(Code.NOT_FOUND, f"Servable not found for request: Specific({name}, {version})")
                return servable
            if not versions:
                raise ServingError(Code.NOT_FOUND, f"Servable not found for request: Latest({name})")
            return versions[max(versions)]

    def status(self, name: str, version: int | None = None, label: str | None = None) -> list[tuple[int, VersionState]]:
        """(version, state) pairs, newest first, as TF Serving's `GetModelStatus`
        (get_model_status_impl.cc) answers: all versions unless a version is given; a version
        label is not looked at there, so it lists all versions too."""
        with self._lock:
            states = self._states.get(name)
            if not states:
                raise ServingError(Code.NOT_FOUND, f"Could not find any versions of model {name}")
            if version is not None:
                if int(version) not in states:
                    raise ServingError(Code.NOT_FOUND, f"Could not find version {version} of model {name}")
                return [(int(version), states[int(version)])]
            return sorted(states.items(), reverse=True)
