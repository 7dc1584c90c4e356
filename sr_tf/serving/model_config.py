"""What to serve: TF Serving's model config (`ModelServerConfig` text files) as `ModelConfig`s, and
`sr-tf serve --model SPEC` resolved to one (a SavedModel base path, or an export into the runtime's cache)."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from sr_tf.config import ConfigBase
from sr_tf.serving.request_log import RequestLogging

log = logging.getLogger("sr_tf.serving")


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


def resolve_model(spec: str, name: str | None = None) -> ModelConfig:
    """The model `sr-tf serve --model SPEC` serves: a SavedModel base path as it is, anything else
    exported once into the runtime's cache (`sr_tf.runtime.savedmodels.serving_base`).

    Raises:
      ValueError / FileNotFoundError: SPEC is no model (the message names it).
    """
    from sr_tf.runtime.savedmodels import serving_base

    base, default_name = serving_base(spec)
    return ModelConfig(name or default_name, base)
