"""deploy/kubernetes/, checked offline: no cluster can run here, so every overlay is rendered with
``kubectl kustomize``, every object is validated against the Kubernetes API schemas
(kubernetes-validate) or, for prometheus-operator's objects, against their CRD schemas (crds/),
and the project's own rules are enforced: requests/limits and probes, pinned images, the CronJob,
read-only models outside the trainer, the same TF Serving flags as compose, one source of truth
for config and alerts."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
from ruamel.yaml import YAML

from harness import tool

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
CRDS = Path(__file__).resolve().parent / "crds"
# The oldest Kubernetes these manifests are written for (docs/kubernetes.md says so).
KUBERNETES_VERSION = "1.30"
OPERATOR_COMPONENT = DEPLOY / "components" / "prometheus-operator"
INGRESS_COMPONENT = DEPLOY / "components" / "ingress"
# What `kubectl apply -k` is pointed at: the overlays, alone and with the optional components.
TARGETS = {
    "local": ("overlays/local", ()),
    "production": ("overlays/production", ()),
    "production+components": ("overlays/production", (OPERATOR_COMPONENT, INGRESS_COMPONENT)),
}
# The only pods that may write models/: the retrains, and the trainer service without its retrains
# (the serving config file, rollout steps).
WRITERS = {("CronJob", "retrain"), ("Job", "bootstrap-model"), ("Deployment", "trainer-metrics")}
RETRAINS = {("CronJob", "retrain"), ("Job", "bootstrap-model")}
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet"}


def _yaml_all(text: str) -> list[dict]:
    return [doc for doc in YAML(typ="safe").load_all(text) if doc]


def _kubectl() -> str:
    return tool("kubectl")


def render(name: str, tmp_path_factory) -> list[dict]:
    """The objects ``kubectl kustomize`` renders for one target of TARGETS."""
    overlay, components = TARGETS[name]
    directory = DEPLOY / overlay
    if components:  # a throwaway overlay on top, as a user would write one
        directory = tmp_path_factory.mktemp("overlay")
        (directory / "kustomization.yaml").write_text(json.dumps({
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": [os.path.relpath(DEPLOY / overlay, directory)],
            "components": [os.path.relpath(c, directory) for c in components],
        }))
    result = subprocess.run([_kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return _yaml_all(result.stdout)


@pytest.fixture(scope="module", params=list(TARGETS))
def objects(request, tmp_path_factory) -> list[dict]:
    return render(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def production(tmp_path_factory) -> list[dict]:
    return render("production+components", tmp_path_factory)


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> list[dict]:
    return render("local", tmp_path_factory)


def pod_specs(objects: list[dict]):
    """``(kind, name, pod spec)`` of every workload."""
    for obj in objects:
        spec = obj.get("spec") or {}
        if obj["kind"] == "CronJob":
            yield obj["kind"], obj["metadata"]["name"], spec["jobTemplate"]["spec"]["template"]["spec"]
        elif "template" in spec:
            yield obj["kind"], obj["metadata"]["name"], spec["template"]["spec"]


def find(objects: list[dict], kind: str, name: str) -> dict:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def schema_errors(obj: dict) -> list[str]:
    """Why ``obj`` is not a valid object of its kind (empty: valid)."""
    crd_schema = CRDS / f"{obj['kind'].lower()}.json"
    if obj["apiVersion"].startswith("monitoring.coreos.com/"):
        validator = jsonschema.Draft202012Validator(json.loads(crd_schema.read_text()))
        return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [str(exc)]
    return []


# --- schemas ---


def test_every_object_is_valid_for_its_schema(objects):
    errors = {f"{o['kind']}/{o['metadata']['name']}": schema_errors(o) for o in objects}
    assert not {k: v for k, v in errors.items() if v}


@pytest.mark.parametrize("kind", ["Deployment", "ServiceMonitor", "PrometheusRule"])
def test_schema_check_catches_a_misspelt_field(production, kind):
    broken = copy.deepcopy(next(o for o in production if o["kind"] == kind))
    broken["spec"]["replica"] = 3  # a typo: kubectl apply would refuse it
    assert schema_errors(broken)


# --- the project's rules ---


def test_every_container_has_requests_limits_and_long_running_ones_probes(objects):
    for kind, name, spec in pod_specs(objects):
        for container in spec["containers"]:
            where = f"{kind}/{name} container {container['name']}"
            resources = container.get("resources", {})
            for section in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(section, {})), f"{where}: {section}"
            if kind in LONG_RUNNING:
                assert "livenessProbe" in container and "readinessProbe" in container, where


def test_images_are_pinned_as_in_compose(objects):
    compose = YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    images = {c["image"] for _, _, spec in pod_specs(objects) for c in spec["containers"]}
    assert compose["services"]["tfserving"]["image"] in images
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name and "/" not in tag and tag not in ("", "latest"), f"{image} is not pinned to a version"
        if "modelops" in name:
            assert tag in (version, "local"), f"{image}: the project's images carry its version {version}"


def test_tfserving_runs_with_the_compose_flags_and_readiness(objects):
    compose = YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())["services"]["tfserving"]
    model = json.loads((ROOT / "config.json").read_text())["model_name"]

    def expand(text: str) -> str:
        return re.sub(r"\$\{MODEL_NAME:-[^}]*\}", model, text).replace("$$", "$")  # compose's escape

    container = find(objects, "Deployment", "tfserving")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == compose["entrypoint"]
    assert container["args"] == [expand(flag) for flag in compose["command"]]
    assert container["readinessProbe"]["exec"]["command"] == [expand(part) for part in compose["healthcheck"]["test"][1:]]
    # liveness must not restart a pod while a big model loads: a startup probe covers the first load
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300


def test_cronjob_runs_the_configured_schedule_once_at_a_time(objects):
    cronjob = find(objects, "CronJob", "retrain")["spec"]
    assert cronjob["schedule"] == json.loads((ROOT / "config.json").read_text())["schedule"]["cron"]
    assert cronjob["concurrencyPolicy"] == "Forbid"
    assert cronjob["startingDeadlineSeconds"] > 0 and cronjob["jobTemplate"]["spec"]["activeDeadlineSeconds"] > 0
    assert cronjob["successfulJobsHistoryLimit"] >= 1 and cronjob["failedJobsHistoryLimit"] >= 1
    command = " ".join(cronjob["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"])
    assert "retrain_pipeline.py" in command


def test_models_volume_is_read_only_outside_the_trainer(objects):
    checked = 0
    for kind, name, spec in pod_specs(objects):
        volumes = {v["name"]: v for v in spec.get("volumes", []) if v.get("persistentVolumeClaim", {}).get("claimName") == "models"}
        for container in spec["containers"] + spec.get("initContainers", []):
            for mount in container.get("volumeMounts", []):
                if mount["name"] in volumes and (kind, name) not in WRITERS:
                    checked += 1
                    assert mount.get("readOnly") is True, f"{kind}/{name} mounts models/ writable"
                    assert volumes[mount["name"]]["persistentVolumeClaim"].get("readOnly") is True, f"{kind}/{name}"
    assert checked >= 3  # tfserving (and its init container), frontend


def test_pods_run_locked_down(objects):
    for kind, name, spec in pod_specs(objects):
        assert spec.get("automountServiceAccountToken") is False, f"{kind}/{name} gets a service-account token"
        assert spec["securityContext"]["runAsNonRoot"] is True, f"{kind}/{name}"
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False, \
                f"{kind}/{name} {container['name']}"


def test_services_and_policies_select_pods_that_exist(objects):
    """A selector typo leaves a Service without endpoints or a policy guarding nothing."""
    labels = list(_pod_labels(objects))
    for obj in objects:
        if obj["kind"] == "Service":
            selected = [spec for pod, spec in labels if obj["spec"]["selector"].items() <= pod.items()]
            assert selected, f"Service {obj['metadata']['name']} selects no pods"
            ports = {p["name"] for spec in selected for c in spec["containers"] for p in c.get("ports", [])}
            for port in obj["spec"]["ports"]:
                assert port["targetPort"] in ports, f"Service {obj['metadata']['name']}: no container port {port}"
        if obj["kind"] == "NetworkPolicy" and obj["spec"]["podSelector"]:
            wanted = obj["spec"]["podSelector"]["matchLabels"].items()
            assert any(wanted <= pod.items() for pod, _ in labels), f"NetworkPolicy {obj['metadata']['name']}"


def _pod_labels(objects):
    for obj in objects:
        spec = obj.get("spec") or {}
        template = spec["jobTemplate"]["spec"]["template"] if obj["kind"] == "CronJob" else spec.get("template")
        if template:
            yield template["metadata"]["labels"], template["spec"]


def test_only_the_frontend_trainer_and_prometheus_reach_tfserving(objects):
    policy = find(objects, "NetworkPolicy", "tfserving")["spec"]
    sources = {peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for rule in policy["ingress"]
               for peer in rule["from"]}
    assert sources == {"frontend", "trainer", "prometheus"}
    assert find(objects, "NetworkPolicy", "default-deny-ingress")["spec"]["podSelector"] == {}


def test_verification_finds_every_replica_through_the_headless_service(objects):
    headless = find(objects, "Service", "tfserving-replicas")["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    for kind, name in RETRAINS:
        env = _env(objects, kind, name)
        assert env["TF_SERVING_HEADLESS_SERVICE"] == "tfserving-replicas:8501", f"{kind}/{name}"


def _env(objects, kind: str, name: str) -> dict:
    spec = next(s for k, n, s in pod_specs(objects) if (k, n) == (kind, name))
    return {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}


def _models_mount(spec: dict, container: dict) -> str:
    claims = {v["name"] for v in spec["volumes"] if v.get("persistentVolumeClaim", {}).get("claimName") == "models"}
    return next(m["mountPath"] for m in container["volumeMounts"] if m["name"] in claims)


def test_tfserving_waits_for_and_runs_from_the_config_file_the_trainer_writes(objects):
    """Switching rollout.mode needs only config.json: the trainer pods write the file on the models
    volume with TF Serving's path in it, and TF Serving (which exits without it) waits for it."""
    spec = find(objects, "Deployment", "tfserving")["spec"]["template"]["spec"]
    container = spec["containers"][0]
    flags = dict(arg.split("=", 1) for arg in container["args"])
    serving_models = _models_mount(spec, container)
    config_file = flags["--model_config_file"]
    assert config_file.startswith(serving_models + "/") and flags["--model_config_file_poll_wait_seconds"] == "1"
    [init] = spec["initContainers"]
    assert init["image"] == container["image"] and config_file in init["command"][-1]
    assert _models_mount(spec, init) == serving_models
    relative = json.loads((ROOT / "config.json").read_text())["rollout"]["serving_config_file"]
    for kind, name in WRITERS:
        pod = next(s for k, n, s in pod_specs(objects) if (k, n) == (kind, name))
        env = _env(objects, kind, name)
        assert env["TF_SERVING_BASE_PATH"] == serving_models, f"{kind}/{name}"
        trainer_root = Path(env["MODELOPS_CONFIG"]).parent  # the trainer writes it relative to config.json
        assert (trainer_root / relative).parent == Path(_models_mount(pod, pod["containers"][0])), f"{kind}/{name}"
        assert (trainer_root / relative).name == Path(config_file).name


def test_the_trainer_deployment_steps_rollouts_on_evidence_from_every_frontend_pod(objects):
    deployment = find(objects, "Deployment", "trainer-metrics")["spec"]
    assert deployment["replicas"] == 1 and deployment["strategy"]["type"] == "Recreate"
    container = deployment["template"]["spec"]["containers"][0]
    assert container["command"][-1] == "--no-retrain"
    host, _, port = _env(objects, "Deployment", "trainer-metrics")["FRONTEND_HEADLESS_SERVICE"].partition(":")
    headless = find(objects, "Service", host)["spec"]
    assert headless["clusterIP"] == "None" and headless["selector"] == {"app.kubernetes.io/name": "frontend"}
    assert [p["port"] for p in headless["ports"]] == [int(port)] == [5002]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert "readOnly" not in mounts["/state/runs"] and "readOnly" not in mounts["/state"]  # records, notifications


def test_overlays_size_storage_and_replicas_for_their_cluster(local, production):
    def claims(objects):
        return {o["metadata"]["name"]: o["spec"]["accessModes"] for o in objects if o["kind"] == "PersistentVolumeClaim"}

    assert all(m == ["ReadWriteOnce"] for m in claims(local).values())
    assert all(m == ["ReadWriteMany"] for m in claims(production).values())
    assert all(o["spec"]["replicas"] == 1 for o in local if o["kind"] == "Deployment")
    assert find(production, "Deployment", "tfserving")["spec"]["replicas"] >= 2
    for name in ("tfserving", "frontend"):
        assert find(production, "HorizontalPodAutoscaler", name)["spec"]["minReplicas"] >= 2
        assert find(production, "PodDisruptionBudget", name)["spec"]["maxUnavailable"] == 1


# --- one source of truth ---


def test_derived_files_are_in_sync_with_their_sources():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "sync_kubernetes.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_rule_carries_exactly_the_alerts(production):
    alerts = YAML(typ="safe").load((ROOT / "monitoring" / "alerts.yml").read_text())
    rule = next(o for o in production if o["kind"] == "PrometheusRule")
    assert rule["spec"]["groups"] == alerts["groups"]


def test_monitors_scrape_each_component_under_its_compose_job_name(production):
    kinds = {(o["kind"], o["metadata"]["name"]) for o in production}
    assert {("ServiceMonitor", "tfserving"), ("ServiceMonitor", "frontend"), ("PodMonitor", "trainer")} <= kinds
    trainer = find(production, "PodMonitor", "trainer")["spec"]
    assert trainer["jobLabel"] == "app.kubernetes.io/name"
    services = [o for o in production if o["kind"] == "Service"]
    for monitor in ("tfserving", "frontend"):
        selector = find(production, "ServiceMonitor", monitor)["spec"]["selector"]
        chosen = [s["metadata"]["name"] for s in services
                  if selector["matchLabels"].items() <= s["metadata"]["labels"].items()
                  and all(e["key"] not in s["metadata"]["labels"] for e in selector.get("matchExpressions", []))]
        assert chosen == [monitor]  # its job label is the Service name: the one alerts.yml uses


def test_kubernetes_sd_prometheus_config_passes_promtool(tmp_path):
    """promtool checks everything but the discovery itself (Debian builds Prometheus without it)."""
    promtool = tool("promtool")
    config = YAML(typ="safe").load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    compose_jobs = YAML(typ="safe").load((ROOT / "monitoring" / "prometheus.yml").read_text())["scrape_configs"]
    assert {j["job_name"] for j in config["scrape_configs"]} == {j["job_name"] for j in compose_jobs} - {"prometheus"}
    for job in config["scrape_configs"]:
        assert job.pop("kubernetes_sd_configs")[0]["role"] == "pod"
        job["static_configs"] = [{"targets": ["pod.invalid:1"]}]
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))
    shutil.copy(ROOT / "monitoring" / "alerts.yml", tmp_path / "alerts.yml")
    result = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
