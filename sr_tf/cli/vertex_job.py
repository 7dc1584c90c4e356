"""`sr-tf vertex-job`: print the Vertex AI requests for the batch prediction job (built offline)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

HELP = ("Print the Vertex AI model-upload and batch-prediction-job requests (REST JSON and curl commands) "
        "equivalent to `sr-tf batch-predict` over gs:// inputs; nothing is sent.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from sr_tf.batch.vertex import INSTANCES_FORMATS

    p.add_argument("--project", required=True, help="Google Cloud project id")
    p.add_argument("--region", required=True, help="e.g. us-central1")
    p.add_argument("--model", required=True, help="gs:// SavedModel version directory (from sr-tf export)")
    p.add_argument("--input", required=True, action="append", help="gs:// input file(s); repeat for more")
    p.add_argument("--output", required=True, help="gs:// output prefix")
    p.add_argument("--instances-format", default="jsonl", choices=INSTANCES_FORMATS)
    p.add_argument("--display-name", default="sr-tf-batch")
    p.add_argument("--container-image", default="", help="default: the TF 2 CPU/GPU prebuilt container of the region")
    p.add_argument("--machine-type", default="n1-standard-4")
    p.add_argument("--accelerator-type", default=None, help="e.g. NVIDIA_TESLA_T4")
    p.add_argument("--accelerator-count", type=int, default=0)
    p.add_argument("--replicas", type=int, default=1, help="starting replica count")
    p.add_argument("--max-replicas", type=int, default=None, help="default: --replicas")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--write-bytes-model", nargs=2, metavar=("SRC", "DST"), default=None,
                   help="also write a local copy of the SavedModel SRC whose default signature takes encoded "
                        "images (what file-list / tf-record jobs send), to upload as --model")
    p.add_argument("--model-id", default="MODEL_ID", help="uploaded model id for the job request (default: a placeholder)")


def run(args: argparse.Namespace) -> int:
    from sr_tf.batch.vertex import (
        VertexJobConfig,
        batch_prediction_request,
        model_upload_request,
        vertex_model_note,
    )

    try:
        config = VertexJobConfig(
            project=args.project, region=args.region, model_uri=args.model, input_uris=tuple(args.input),
            output_prefix=args.output, instances_format=args.instances_format, display_name=args.display_name,
            container_image=args.container_image, machine_type=args.machine_type,
            accelerator_type=args.accelerator_type, accelerator_count=args.accelerator_count,
            starting_replica_count=args.replicas, max_replica_count=args.max_replicas or args.replicas,
            batch_size=args.batch_size,
        )
        requests = [model_upload_request(config), batch_prediction_request(config, args.model_id)]
    except ValueError as err:
        print(f"sr-tf vertex-job: {err}", file=sys.stderr)
        return 2
    if args.write_bytes_model:
        from sr_tf.batch.vertex import savedmodel_with_bytes_default

        try:
            savedmodel_with_bytes_default(*args.write_bytes_model)
        except (OSError, ValueError) as err:
            print(f"sr-tf vertex-job: {err}", file=sys.stderr)
            return 2
        print(f"# wrote {args.write_bytes_model[1]}: upload it to {args.model}", file=sys.stderr)
    note = vertex_model_note(config)
    if note:
        print(f"# note: {note}", file=sys.stderr)
    for title, (url, body) in zip(("1. upload the model", "2. create the batch prediction job"), requests, strict=True):
        text = json.dumps(body, indent=2)
        print(f"# {title}\n{text}")
        print("curl -X POST -H \"Authorization: Bearer $(gcloud auth print-access-token)\" "
              f"-H 'Content-Type: application/json' {shlex.quote(url)} -d {shlex.quote(json.dumps(body))}\n")
    return 0
