"""Servables (loaded SavedModel versions) and the manager that loads, swaps and unloads them.

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
from pathlib import Path

import numpy as np

from sr_tf.config import ConfigBase
from sr_tf.runtime.savedmodels import list_versions, load_savedmodel, version_path
from sr_tf.serving.codec import TensorInfo
from sr_tf.serving.errors import Code, ServingError, invalid
from sr_tf.serving.request_log import RequestLogging

log = logging.getLogger("sr_tf.serving")
DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"


@dataclasses.dataclass(frozen=True)
class ModelConfig(ConfigBase):
    """One served model (the fields of TF Serving's `ModelConfig` we support).

    Attributes:
      name: model name in URLs and `model_spec.name`.
      base_path: folder with integer version sub-directories.
      version_policy: "latest" (newest `num_latest`), "all" or "specific" (`versions`).
      labels: version label -> version number (e.g. {"stable": 1, "canary": 2}).
      logging: request logging (`logging_config`; see `sr_tf.serving.request_log`), or None.
    """

    name: str
    base_path: str
    version_policy: str = "latest"
    num_latest: int = 1
    versions: tuple[int, ...] = ()
    labels: dict[str, int] = dataclasses.field(default_factory=dict)
    logging: RequestLogging | None = None

    def __post_init__(self):
        if self.version_policy not in ("latest", "all", "specific"):
            raise ValueError(f"ModelConfig: unknown version policy. Received: version_policy={self.version_policy!r}")
        if self.version_policy == "specific" and not self.versions:
            raise ValueError(f"ModelConfig {self.name!r}: the specific policy needs `versions`.")

    def aspired(self, available: list[int]) -> set[int]:
        """The versions to serve out of those present on disk."""
        ordered = sorted(available)
        if self.version_policy == "all":
            return set(ordered)
        if self.version_policy == "specific":
            return set(self.versions) & set(ordered)
        return set(ordered[-self.num_latest:]) if ordered else set()


def parse_model_config_text(text: str, base_dir: str | os.PathLike | None = None) -> list[ModelConfig]:
    """Parses a TF Serving `--model_config_file` (a `ModelServerConfig` text proto).

    Relative base paths are resolved against `base_dir` (the config file's folder) when given.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    proto = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, proto)
    except text_format.ParseError as err:
        raise ValueError(f"Error parsing text-format tensorflow.serving.ModelServerConfig: {err}") from None
    if proto.WhichOneof("config") != "model_config_list":
        raise ValueError("The model config file must hold a `model_config_list`.")
    configs = []
    for m in proto.model_config_list.config:
        if m.model_platform not in ("", "tensorflow"):
            raise ValueError(f"Model {m.name!r}: only model_platform 'tensorflow' is supported. Received: {m.model_platform!r}")
        which = m.model_version_policy.WhichOneof("policy_choice") or "latest"
        base = m.base_path
        if base_dir is not None and not os.path.isabs(base):
            base = os.path.join(str(base_dir), base)
        configs.append(ModelConfig(
            name=m.name,
            base_path=base,
            version_policy=which,
            num_latest=(m.model_version_policy.latest.num_versions or 1) if which == "latest" else 1,
            versions=tuple(m.model_version_policy.specific.versions) if which == "specific" else (),
            labels=dict(m.version_labels),
            logging=_logging(m),
        ))
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f"Model names in the config file must be unique. Received: {names}")
    return configs


def _logging(m) -> RequestLogging | None:
    from sr_tf.serving.request_log import from_proto

    try:
        return from_proto(m.logging_config) if m.HasField("logging_config") else None
    except ValueError as err:
        raise ValueError(f"Model {m.name!r}: logging_config: {err}") from None


def parse_model_config_file(path: str | os.PathLike) -> list[ModelConfig]:
    return parse_model_config_text(Path(path).read_text(), base_dir=Path(path).parent)


@dataclasses.dataclass
class Signature:
    """A callable signature; `defaults` are the SignatureDef's values for inputs a request may omit."""

    name: str
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]
    function: object
    defaults: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


def _tensor_info(proto) -> TensorInfo:
    import tensorflow as tf

    dtype = tf.dtypes.as_dtype(proto.dtype)
    np_dtype = np.dtype(object) if dtype == tf.string else np.dtype(dtype.as_numpy_dtype)
    shape = None
    if not proto.tensor_shape.unknown_rank:
        shape = tuple(None if d.size < 0 else int(d.size) for d in proto.tensor_shape.dim)
    return TensorInfo(np_dtype, shape)


class Servable:
    """One loaded version of a model: its SavedModel, signature defs and callable signatures."""

    def __init__(self, name: str, version: int, path: str, tags: tuple[str, ...] = ("serve",)):
        import tensorflow as tf
        from tensorflow.core.protobuf import saved_model_pb2

        self.name, self.version, self.path = name, int(version), path
        saved = saved_model_pb2.SavedModel()
        with tf.io.gfile.GFile(os.path.join(path, "saved_model.pb"), "rb") as f:
            saved.ParseFromString(f.read())
        graphs = [g for g in saved.meta_graphs if set(tags) <= set(g.meta_info_def.tags)]
        if not graphs:
            raise ValueError(f"No MetaGraph in {path} has the tags {sorted(tags)} (--saved_model_tags)")
        self.signature_defs = graphs[0].signature_def  # map<string, SignatureDef>
        self._loaded = load_savedmodel(path, tags)
        self.signatures: dict[str, Signature] = {}
        for key, fn in self._loaded.signatures.items():
            sd = self.signature_defs[key]
            self.signatures[key] = Signature(
                key,
                {k: _tensor_info(v) for k, v in sd.inputs.items()},
                {k: _tensor_info(v) for k, v in sd.outputs.items()},
                fn,
                {k: tf.make_ndarray(v) for k, v in sd.defaults.items()},
            )

    def signature(self, name: str, grpc: bool = False) -> Signature:
        """The named signature (default: serving_default). An unknown one is TF Serving's error:
        INVALID_ARGUMENT over REST (http_rest_api_handler.cc `GetInfoMap`), FAILED_PRECONDITION
        over gRPC (predict_util.cc `RunPredict`)."""
        key = name or DEFAULT_SIGNATURE
        sig = self.signatures.get(key)
        if sig is None:
            if grpc:
                raise ServingError(Code.FAILED_PRECONDITION, f'Serving signature key "{key}" not found.')
            raise invalid(f'Serving signature name: "{key}" not found in signature def')
        return sig

    def run(self, signature: Signature, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Calls a signature on numpy inputs; returns numpy outputs (strings as object arrays of bytes).
        An input left out takes the SignatureDef's default, as in TF Serving."""
        import tensorflow as tf

        inputs = {**signature.defaults, **inputs}
        try:
            outputs = signature.function(**{k: tf.constant(v) for k, v in inputs.items()})
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as err:
            raise invalid(_first_line(err)) from None
        except tf.errors.OpError as err:
            raise ServingError(Code.INTERNAL, _first_line(err)) from None
        return {k: v.numpy() for k, v in outputs.items()}

    def warm_up(self, iterations: int = 1) -> int:
        """Replays `assets.extra/tf_serving_warmup_requests` (predict logs), each `iterations`
        times (`--num_request_iterations_for_warmup`); returns how many requests there were."""
        import tensorflow as tf

        from sr_tf.export import read_warmup_requests

        requests = read_warmup_requests(self.path)[:1000]
        for request in requests:
            sig = self.signature(request.model_spec.signature_name)
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            for _ in range(max(1, iterations)):
                self.run(sig, inputs)
        return len(requests)


def _first_line(err: Exception) -> str:
    """The reason an error gives, in one line. TensorFlow's graph errors start with "Graph
    execution error:" and a traceback of where the op was defined; the reason is the line before
    the trailing `[[{{node ...}}]]`, so that is the one a client sees."""
    text = (getattr(err, "message", None) or str(err)).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    if lines[0].startswith("Graph execution error"):
        reasons = [line for line in lines[1:] if not line.startswith(("[[", "Detected at node", "File \""))]
        if reasons:
            return reasons[-1]
    return lines[0]


def _fingerprint(path: str) -> tuple:
    """(name, size, mtime) of a version's saved_model.pb and variables files: it changes while a
    copy goes on, and when the version is rewritten."""
    import tensorflow as tf

    files = [os.path.join(path, "saved_model.pb")]
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
    """

    def __init__(self, configs: list[ModelConfig], poll_seconds: float = 1.0, warmup: bool = True,
                 load_retries: int = 5, load_retry_interval: float = 60.0, warmup_iterations: int = 1,
                 tags: tuple[str, ...] = ("serve",)):
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
                servable = Servable(config.name, version, path, self.tags)
                if self.warmup:
                    servable.warm_up(self.warmup_iterations)
                break
            except Exception as err:  # any load failure is reported, never fatal
                message = f"Failed to load {config.name} version {version} from {path}: {_first_line(err)}"
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


def resolve_model(spec: str, name: str | None = None) -> ModelConfig:
    """The model `sr-tf serve --model SPEC` serves: a SavedModel base path as it is, anything else
    exported once into the runtime's cache (`sr_tf.runtime.savedmodels.serving_base`).

    Raises:
      ValueError / FileNotFoundError: SPEC is no model (the message names it).
    """
    from sr_tf.runtime.savedmodels import serving_base

    base, default_name = serving_base(spec)
    return ModelConfig(name or default_name, base)
