"""The manifests in serving/deploy/ are valid against their published schemas (Kubernetes' from the
kubernetes-validate package, KServe's InferenceService CRD vendored in tests/serving/schemas/),
their probes and grace periods agree with the server's flags, and every argument they pass
`sr-tf serve` is accepted by its own parser (so the files cannot drift from the CLI)."""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from sr_tf.cli import build_parser
from sr_tf.cli.serve import TF_SERVING_FLAGS, _check_flags

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "serving" / "deploy"
SCHEMAS = Path(__file__).parent / "schemas"
# gRPC probes are GA from 1.27, the preStop sleep action from 1.30 (beta, on by default); the newest
# schemas kubernetes-validate ships are checked too
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())


def _documents(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d is not None]


def _all_documents() -> list[tuple[str, dict]]:
    return [(p.name, d) for p in sorted(DEPLOY.glob("*.yaml")) for d in _documents(p.name)]


def _strict(schema):
    """An OpenAPI v3 structural schema (a CRD's) as JSON Schema that refuses unknown fields, as
    `kubectl apply --validate=strict` does: objects with `properties` get `additionalProperties:
    false` unless they keep unknown fields on purpose."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.cache
def _inference_service_validator():
    schema = json.loads(gzip.decompress((SCHEMAS / "kserve-inferenceservice-v1beta1.schema.json.gz").read_bytes()))
    return jsonschema.Draft7Validator(_strict(schema))


@functools.cache
def _object_meta_validator():
    """Kubernetes' ObjectMeta (strict), for a custom resource's `metadata`, which a CRD schema
    leaves to the API server (`type: object`)."""
    from referencing import Registry, Resource

    version = kubernetes_validate.latest_version()
    defs = kubernetes_validate.utils.schema_contents(
        f"kubernetes-json-schema/v{version}-local-strict/_definitions.json", version)
    ref = {"$ref": f"{defs['$id']}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    return jsonschema.Draft202012Validator(ref, registry=Resource.from_contents(defs) @ Registry())


def _serve_args(args: list[str]):
    """`sr-tf serve ARGS` parsed by the CLI itself (an unknown or malformed flag exits)."""
    parsed = build_parser(["serve"]).parse_args(["serve", *args])
    _check_flags(parsed)  # a refused flag (e.g. --platform_config_file) raises
    return parsed


def _flag_values(args: list[str]) -> dict[str, str]:
    return dict(a[2:].partition("=")[::2] for a in args)


def test_every_manifest_is_valid_against_its_schema():
    documents = _all_documents()
    kinds = sorted({d["kind"] for _, d in documents})
    assert kinds == ["Deployment", "HorizontalPodAutoscaler", "InferenceService", "Service"], kinds
    for name, doc in documents:
        if doc["kind"] == "InferenceService":
            assert doc["apiVersion"] == "serving.kserve.io/v1beta1"
            errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
                      for e in _inference_service_validator().iter_errors(doc)]
            errors += [f"metadata: {e.message}" for e in _object_meta_validator().iter_errors(doc["metadata"])]
            assert not errors, (name, errors)
        else:
            for version in KUBERNETES_VERSIONS:
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                except kubernetes_validate.ValidationError as err:
                    raise AssertionError(f"{name} {doc['kind']} (Kubernetes {version}): {err.message} "
                                         f"at {'.'.join(map(str, err.path))}") from None


def test_schema_checks_catch_mistakes():
    """The validation above refuses a misspelt field, in both kinds of schema."""
    (isvc,) = _documents("kserve-tensorflow-serving.yaml")
    isvc["spec"]["predictor"]["model"]["storageURI"] = isvc["spec"]["predictor"]["model"].pop("storageUri")
    assert any("storageURI" in e.message for e in _inference_service_validator().iter_errors(isvc))
    assert any("annotation" in e.message for e in _object_meta_validator().iter_errors({"annotation": {}}))
    deployment = _documents("sr-tf-serve.yaml")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = [8501]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def test_kserve_tf_serving_manifest_matches_the_runtime_kserve_declares():
    (runtime,) = yaml.safe_load_all((SCHEMAS / "kserve-tensorflow-serving.yaml").read_text())
    (isvc,) = _documents("kserve-tensorflow-serving.yaml")
    model = isvc["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"] == "kserve-tensorflow-serving"
    assert model["protocolVersion"] in runtime["spec"]["protocolVersions"] == ["v1", "grpc-v1"]
    assert {"name": model["modelFormat"]["name"], "version": model["modelFormat"]["version"]} in [
        {"name": f["name"], "version": f["version"]} for f in runtime["spec"]["supportedModelFormats"]]
    assert model["storageUri"].startswith("gs://") and not model["storageUri"].rstrip("/").split("/")[-1].isdigit()
    (container,) = runtime["spec"]["containers"]
    args = [a.replace("{{.Name}}", isvc["metadata"]["name"]) for a in container["args"]]
    assert args[1:] == ["--port=9000", "--rest_api_port=8080", "--model_base_path=/mnt/models",
                        "--rest_api_timeout_in_ms=60000"]
    assert {a[2:].split("=")[0] for a in args} <= set(TF_SERVING_FLAGS)
    _serve_args(args)  # the runtime's command line works for `sr-tf serve` too


def _container_checks(spec: dict, container: dict) -> dict[str, str]:
    """Probes, ports and grace period of a pod running `sr-tf serve`, against its flags."""
    args = container["args"]
    parsed = _serve_args(args)
    flags = _flag_values(args)
    assert parsed.host == "0.0.0.0"  # reachable from outside the pod
    assert parsed.enable_grpc_healthcheck_service is True and parsed.ui is False
    assert "://" in parsed.model_base_path or parsed.model_base_path.startswith("/")
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == parsed.port, probe
    ready = container["readinessProbe"]["httpGet"]
    assert ready["path"] == f"/v1/models/{parsed.model_name}"
    ports = {p.get("name", p["containerPort"]): p["containerPort"] for p in container["ports"]}
    assert ports.get(ready["port"], ready["port"]) == parsed.rest_api_port
    assert parsed.rest_api_port in ports.values()
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    # the server ends its requests (503 after --grace-seconds), with time to exit before SIGKILL
    assert pre_stop + parsed.grace_seconds + 5 <= spec["terminationGracePeriodSeconds"] <= \
        pre_stop + parsed.grace_seconds + 20, (spec["terminationGracePeriodSeconds"], pre_stop, parsed.grace_seconds)
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    return flags


def test_kserve_custom_container_runs_sr_tf_serve_with_the_runtimes_arguments():
    (runtime,) = yaml.safe_load_all((SCHEMAS / "kserve-tensorflow-serving.yaml").read_text())
    (isvc,) = _documents("kserve-sr-tf-serve.yaml")
    predictor = isvc["spec"]["predictor"]
    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container"  # the container KServe mounts /mnt/models into
    flags = _container_checks(predictor, container)
    runtime_flags = _flag_values(a.replace("{{.Name}}", isvc["metadata"]["name"])
                                 for a in runtime["spec"]["containers"][0]["args"])
    assert {k: flags.get(k) for k in runtime_flags} == runtime_flags  # the same API as the TF Serving runtime
    assert {e["name"]: e["value"] for e in container["env"]}["STORAGE_URI"].startswith("gs://")
    assert [p["containerPort"] for p in container["ports"]] == [8080]


def test_kubernetes_deployment_service_and_autoscaler_fit_together():
    deployment, service, hpa = _documents("sr-tf-serve.yaml")
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    flags = _container_checks(pod["spec"], container)
    parsed = _serve_args(container["args"])
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert {p["name"]: named[p["targetPort"]] for p in service["spec"]["ports"]} == {
        "grpc": parsed.port, "http": parsed.rest_api_port}
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}
    assert hpa["spec"]["minReplicas"] <= deployment["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    assert container["resources"]["requests"]["cpu"]  # a CPU utilization target needs a request
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/monitoring/prometheus/metrics"
    assert flags["model_base_path"].startswith("gs://")


def test_every_sr_tf_serve_flag_in_the_deploy_files_is_accepted():
    """Whatever runs `sr-tf serve` (Deployment, custom container) passes args its parser takes."""
    seen = 0
    for _, doc in _all_documents():
        spec = doc["spec"]["template"]["spec"] if doc["kind"] == "Deployment" else doc["spec"].get("predictor", {})
        for container in spec.get("containers", []):
            if "sr-tf-serve" in container["image"]:
                _serve_args(container["args"])
                seen += 1
    assert seen == 2
    with pytest.raises(SystemExit):
        _serve_args(["--rest-api-port=8080"])  # a misspelt flag is refused, so this check can fail
