"""The Vertex AI requests equivalent to a batch prediction job, built offline as plain JSON.

Two REST calls (Vertex AI API v1): `models:upload` registers the exported SavedModel with a
prebuilt TensorFlow Serving container, then `batchPredictionJobs` runs it over GCS inputs. The
bodies are returned as dicts (print them, or send them with `curl -H "Authorization: Bearer
$(gcloud auth print-access-token)" -d @body.json URL`); no Google library is needed to build them.

What Vertex AI sends the model: with `jsonl` each line is one instance (an `[H, W, 3]` array for
the `serving_default` signature); with `file-list` and `tf-record` each file or record is sent as
`{"b64": ...}`, which TF Serving only accepts when the default signature takes strings, so for those
formats upload the copy `savedmodel_with_bytes_default` writes (the encoded-image signature as its
default; predictions are then `{"b64": PNG}`).
"""

from __future__ import annotations

import dataclasses
import re

from sr_tf.config import ConfigBase

INSTANCES_FORMATS = ("jsonl", "file-list", "tf-record")
_REGION = re.compile(r"^[a-z]+-[a-z]+\d+$")


@dataclasses.dataclass(frozen=True)
class VertexJobConfig(ConfigBase):
    """A Vertex AI batch prediction job.

    Attributes:
      project: Google Cloud project id.
      region: e.g. `us-central1`.
      model_uri: gs:// directory holding `saved_model.pb` (an `sr-tf export` version directory).
      input_uris: gs:// files (wildcards allowed by Vertex AI) in `instances_format`.
      output_prefix: gs:// prefix under which Vertex writes `prediction-<model>-<time>/`.
      instances_format: `jsonl`, `file-list` or `tf-record`.
      display_name: the job's (and model's) name in the console.
      container_image: TF Serving prebuilt container, `{geo}-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-XX:latest`.
      machine_type: prediction node machine type.
      accelerator_type / accelerator_count: e.g. `NVIDIA_TESLA_T4` and 1 (None: CPU only).
      starting_replica_count / max_replica_count: how many nodes run the job (throughput scales with them).
      batch_size: instances per request to each node.
    """

    project: str
    region: str
    model_uri: str
    input_uris: tuple[str, ...]
    output_prefix: str
    instances_format: str = "jsonl"
    display_name: str = "sr-tf-batch"
    container_image: str = ""
    machine_type: str = "n1-standard-4"
    accelerator_type: str | None = None
    accelerator_count: int = 0
    starting_replica_count: int = 1
    max_replica_count: int = 1
    batch_size: int = 8

    def __post_init__(self):
        if not self.project:
            raise ValueError(f"VertexJobConfig: `project` is required. Received: project={self.project!r}")
        if not _REGION.match(self.region or ""):
            raise ValueError(f"VertexJobConfig: `region` looks like us-central1. Received: region={self.region!r}")
        for name in ("model_uri", "output_prefix"):
            if not str(getattr(self, name)).startswith("gs://"):
                raise ValueError(f"VertexJobConfig: `{name}` must be a gs:// URI. Received: {name}={getattr(self, name)!r}")
        if not self.input_uris or not all(u.startswith("gs://") for u in self.input_uris):
            raise ValueError(f"VertexJobConfig: `input_uris` must be gs:// URIs. Received: input_uris={self.input_uris!r}")
        if self.instances_format not in INSTANCES_FORMATS:
            raise ValueError(
                f"VertexJobConfig: `instances_format` must be one of {', '.join(INSTANCES_FORMATS)}. "
                f"Received: instances_format={self.instances_format!r}"
            )
        if self.max_replica_count < self.starting_replica_count or self.starting_replica_count < 1:
            raise ValueError(
                "VertexJobConfig: need 1 <= starting_replica_count <= max_replica_count. Received: "
                f"starting_replica_count={self.starting_replica_count}, max_replica_count={self.max_replica_count}"
            )
        if self.batch_size < 1:
            raise ValueError(f"VertexJobConfig: `batch_size` must be >= 1. Received: batch_size={self.batch_size}")
        if (self.accelerator_type is None) != (self.accelerator_count == 0):
            raise ValueError(
                "VertexJobConfig: give accelerator_type and accelerator_count >= 1 together. Received: "
                f"accelerator_type={self.accelerator_type!r}, accelerator_count={self.accelerator_count}"
            )


def default_container(region: str, gpu: bool = False, tf_version: str = "2-15") -> str:
    """The prebuilt TF Serving image for a region (us / europe / asia artifact registries)."""
    geo = region.split("-")[0]
    geo = geo if geo in ("us", "europe", "asia") else "us"
    return f"{geo}-docker.pkg.dev/vertex-ai/prediction/tf2-{'gpu' if gpu else 'cpu'}.{tf_version}:latest"


def api_base(config: VertexJobConfig) -> str:
    return (f"https://{config.region}-aiplatform.googleapis.com/v1/projects/{config.project}"
            f"/locations/{config.region}")


def model_upload_request(config: VertexJobConfig) -> tuple[str, dict]:
    """(URL, body) of `POST .../models:upload` for the SavedModel with the TF Serving container."""
    image = config.container_image or default_container(config.region, gpu=config.accelerator_type is not None)
    body = {
        "model": {
            "displayName": config.display_name,
            "artifactUri": config.model_uri.rstrip("/") + "/",
            "containerSpec": {"imageUri": image},
        }
    }
    return f"{api_base(config)}/models:upload", body


def batch_prediction_request(config: VertexJobConfig, model_id: str) -> tuple[str, dict]:
    """(URL, body) of `POST .../batchPredictionJobs` for an uploaded model (its numeric id or full name)."""
    if not model_id:
        raise ValueError("batch_prediction_request: `model_id` is required (from the upload's response)")
    name = model_id if model_id.startswith("projects/") else f"projects/{config.project}/locations/{config.region}/models/{model_id}"
    machine: dict = {"machineType": config.machine_type}
    if config.accelerator_type:
        machine.update(acceleratorType=config.accelerator_type, acceleratorCount=config.accelerator_count)
    body = {
        "displayName": config.display_name,
        "model": name,
        "inputConfig": {"instancesFormat": config.instances_format, "gcsSource": {"uris": list(config.input_uris)}},
        "outputConfig": {"predictionsFormat": "jsonl", "gcsDestination": {"outputUriPrefix": config.output_prefix}},
        "dedicatedResources": {
            "machineSpec": machine,
            "startingReplicaCount": config.starting_replica_count,
            "maxReplicaCount": config.max_replica_count,
        },
        "manualBatchTuningParameters": {"batchSize": config.batch_size},
    }
    return f"{api_base(config)}/batchPredictionJobs", body


def savedmodel_with_bytes_default(version_dir: str, out: str) -> str:
    """Re-saves an `sr-tf export` SavedModel with `encoded_image` as `serving_default` (the pixel
    signature stays, as `pixels`), for Vertex AI's file-list and tf-record formats.

    Args:
      version_dir: local SavedModel directory written by `sr_tf.export.export_savedmodel`.
      out: local directory to write (must not exist); upload it and pass its gs:// URI as `model_uri`.
    """
    import os

    import tensorflow as tf

    from sr_tf.export import DEFAULT_SIGNATURE, ENCODED_SIGNATURE
    from sr_tf.runtime.savedmodels import load_savedmodel

    if os.path.exists(out):
        raise FileExistsError(f"savedmodel_with_bytes_default: the output exists. Received: out={out!r}")
    loaded = load_savedmodel(version_dir)
    if ENCODED_SIGNATURE not in loaded.signatures:
        raise ValueError(f"The SavedModel has no {ENCODED_SIGNATURE!r} signature. Received: version_dir={version_dir!r}")
    signatures = {DEFAULT_SIGNATURE: loaded.signatures[ENCODED_SIGNATURE],
                  "pixels": loaded.signatures[DEFAULT_SIGNATURE]}
    tf.saved_model.save(loaded, out, signatures=signatures)
    return out


def vertex_model_note(config: VertexJobConfig) -> str | None:
    """A warning when the format sends `{"b64": ...}` to a model whose default signature takes pixels."""
    if config.instances_format == "jsonl":
        return None
    return ("Vertex AI sends each file/record as {\"b64\": ...} to the model's serving_default signature; "
            "sr-tf's default signature takes float pixels, so use jsonl instances ([H, W, 3] arrays), or "
            "upload the copy `sr-tf vertex-job --write-bytes-model SRC DST` writes (encoded images in and out).")
