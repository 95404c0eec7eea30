"""modelops.stack without starting the stack: ports, the derived Prometheus config, mode
selection, the healthcheck probe and the environment the Procfile gets."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from harness.servers import QuietHandler, http_server
from modelops import stack
from modelops.core import probe
from modelops.core.paths import REPO_ROOT

COMPOSE_SIDE = (REPO_ROOT / "monitoring/prometheus.yml").read_text()


def test_ports_default_to_the_readme_ones():
    assert stack.ports_from_env({}) == {
        "FRONTEND_PORT": 5002,
        "TF_REST_PORT": 8501,
        "TF_GRPC_PORT": 8500,
        "PROMETHEUS_PORT": 9090,
        "TRAINER_METRICS_PORT": 9102,
        "ALERTMANAGER_PORT": 9093,
    }


def test_ports_come_from_env():
    assert stack.ports_from_env({"FRONTEND_PORT": "15002"})["FRONTEND_PORT"] == 15002


@pytest.mark.parametrize("value", ["abc", "0", "70000", "-1", "80.5"])
def test_bad_port_names_the_variable(value):
    with pytest.raises(stack.StackError, match="FRONTEND_PORT must be a TCP port number"):
        stack.ports_from_env({"FRONTEND_PORT": value})


def test_ports_must_differ():
    with pytest.raises(stack.StackError, match="must differ"):
        stack.ports_from_env({"FRONTEND_PORT": "8501"})


def test_local_prometheus_config_rewrites_targets_and_rule_paths():
    ports = stack.ports_from_env({"FRONTEND_PORT": "1111", "TF_REST_PORT": "2222"})
    derived = stack.local_prometheus_config(COMPOSE_SIDE, ports, Path("/repo/monitoring"))
    assert '"127.0.0.1:1111"' in derived and '"127.0.0.1:2222"' in derived
    assert '"127.0.0.1:9102"' in derived and '"127.0.0.1:9090"' in derived
    assert '"127.0.0.1:9093"' in derived  # Alertmanager
    for service_target in stack.COMPOSE_TARGETS:
        assert service_target not in derived
    assert "  - /repo/monitoring/alerts.yml\n" in derived
    assert "/monitoring/prometheus/metrics" in derived  # everything else unchanged


def test_local_prometheus_config_targets_the_bind_address():
    derived = stack.local_prometheus_config(COMPOSE_SIDE, stack.ports_from_env({}), Path("/m"), host="10.0.0.7")
    assert '"10.0.0.7:5002"' in derived and '"10.0.0.7:9093"' in derived and '"127.0.0.1:' not in derived


def test_local_prometheus_config_fails_loudly_when_a_target_is_renamed():
    with pytest.raises(stack.StackError, match='no target "frontend:5002"'):
        stack.local_prometheus_config(COMPOSE_SIDE.replace("frontend:5002", "web:5002"), stack.ports_from_env({}), Path("/m"))


def test_has_model_needs_a_numeric_directory(tmp_path):
    assert not stack.has_model(tmp_path / "missing")
    (tmp_path / ".tmp-1").mkdir()
    (tmp_path / "7").write_text("a file, not a version")
    assert not stack.has_model(tmp_path)
    (tmp_path / "3").mkdir()
    assert stack.has_model(tmp_path)


@pytest.fixture
def ok_server():
    """Answers 200 on /ok and 503 elsewhere."""

    class Handler(QuietHandler):
        def do_GET(self):  # noqa: N802 (http.server API)
            self.send_response(200 if self.path == "/ok" else 503)
            self.end_headers()

    with http_server(Handler) as url:
        yield url


def test_probe_wants_2xx_and_optionally_a_model(ok_server, tmp_path):
    assert probe.probe(f"{ok_server}/ok")
    assert not probe.probe(f"{ok_server}/readyz")  # 503
    assert not probe.probe(f"{ok_server}/ok", models_dir=tmp_path)
    (tmp_path / "1").mkdir()
    assert probe.probe(f"{ok_server}/ok", models_dir=tmp_path)


def test_probe_can_also_want_a_file(ok_server, tmp_path):
    """The compose trainer is healthy only once TF Serving's config file exists (serving exits without it)."""
    wanted = tmp_path / "models.config"
    assert stack.main(["probe", f"{ok_server}/ok", "--file", str(wanted)]) == 1
    wanted.write_text("model_config_list {}\n")
    assert stack.main(["probe", f"{ok_server}/ok", "--file", str(wanted)]) == 0


@pytest.mark.parametrize("mode", ["direct", "shadow"])
def test_local_serving_runs_from_the_config_file_in_every_mode(tmp_path, monkeypatch, mode):
    from harness.project import write_config
    from modelops.core.config import load_config

    monkeypatch.delenv("TF_SERVING_BASE_PATH", raising=False)
    config = load_config(write_config(tmp_path, rollout={"mode": mode}))
    (config.models_dir / "1").mkdir(parents=True)  # bootstrapped
    env = stack.serving_config_env(config)
    assert env["TF_SERVING_CONFIG_ARGS"].split() == [
        f"--model_config_file={config.serving_config_path}", "--model_config_file_poll_wait_seconds=1"]
    assert f'base_path: "{config.models_dir.resolve()}"' in config.serving_config_path.read_text()


def test_probe_cli_exit_codes(ok_server):
    assert stack.main(["probe", f"{ok_server}/ok"]) == 0
    assert stack.main(["probe", f"{ok_server}/readyz"]) == 1
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert stack.main(["probe", f"http://127.0.0.1:{port}/"]) == 1  # nothing listens


def test_wait_ready_fails_fast_when_a_service_exits(ok_server):
    with pytest.raises(stack.StackError, match="exited during startup"):
        stack.wait_ready(f"{ok_server}/readyz", timeout=60, alive=lambda: False)
    stack.wait_ready(f"{ok_server}/ok", timeout=5, alive=lambda: False)  # ready wins


def test_wait_ready_times_out(ok_server):
    with pytest.raises(stack.StackError, match="not ready after 0s"):
        stack.wait_ready(f"{ok_server}/readyz", timeout=0, alive=lambda: True)


def test_busy_ports_names_the_taken_one():
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert stack.busy_ports({"FRONTEND_PORT": port}) == [f"FRONTEND_PORT={port}"]
    assert stack.busy_ports({"FRONTEND_PORT": port}) == []


def _fake_bin(directory: Path, name: str, exit_code: int) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\nexit {exit_code}\n")
    path.chmod(0o755)


def test_docker_mode_needs_an_engine_that_answers(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not stack.docker_engine_answers()  # no docker CLI
    _fake_bin(tmp_path, "docker", 1)
    assert not stack.docker_engine_answers()  # CLI present, engine down (this machine)
    _fake_bin(tmp_path, "docker", 0)
    assert stack.docker_engine_answers()


def test_compose_command_prefers_the_plugin_then_the_standalone(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    _fake_bin(tmp_path, "docker", 0)
    assert stack.compose_command() == ["docker", "compose"]
    _fake_bin(tmp_path, "docker", 1)
    _fake_bin(tmp_path, "docker-compose", 0)
    assert stack.compose_command() == ["docker-compose"]
    (tmp_path / "docker-compose").unlink()
    with pytest.raises(stack.StackError, match="neither"):
        stack.compose_command()


def test_local_env_matches_what_compose_sets(tmp_path):
    ports = stack.ports_from_env({"TF_REST_PORT": "18501"})
    env = stack.local_env({"PATH": str(tmp_path)}, ports, "m", tmp_path / "models")
    assert env["TF_HOST"] == "http://127.0.0.1:18501"
    assert env["MODEL_NAME"] == "m"
    assert env["MODELS_DIR"] == str(tmp_path / "models")
    assert env["TF_REST_PORT"] == "18501" and env["TRAINER_METRICS_PORT"] == "9102"
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith(str(stack.STACK_DIR))
    assert "TF_SERVING_BIN" not in env


def test_local_mode_binds_to_localhost_unless_told_otherwise(tmp_path):
    ports = stack.ports_from_env({})
    env = stack.local_env({"PATH": str(tmp_path)}, ports, "m", tmp_path)
    assert env["BIND_ADDRESS"] == "127.0.0.1"
    env = stack.local_env({"PATH": str(tmp_path), "BIND_ADDRESS": "0.0.0.0"}, ports, "m", tmp_path)
    assert env["BIND_ADDRESS"] == "0.0.0.0"
    assert env["TF_HOST"] == "http://127.0.0.1:8501"  # services reach each other over loopback
    env = stack.local_env({"PATH": str(tmp_path), "BIND_ADDRESS": "10.0.0.7"}, ports, "m", tmp_path)
    assert env["TF_HOST"] == "http://10.0.0.7:8501"


@pytest.mark.parametrize("value", ["localhost", "0.0.0.0:80", "::1", "256.1.1.1"])
def test_bad_bind_address_names_the_variable(value, tmp_path):
    with pytest.raises(stack.StackError, match="BIND_ADDRESS must be an IPv4 address"):
        stack.local_env({"BIND_ADDRESS": value}, stack.ports_from_env({}), "m", tmp_path)


def test_local_env_finds_alertmanager_under_debians_or_upstreams_name(tmp_path):
    ports = stack.ports_from_env({})
    assert "ALERTMANAGER_BIN" not in stack.local_env({"PATH": str(tmp_path)}, ports, "m", tmp_path)
    _fake_bin(tmp_path, "alertmanager", 0)
    assert stack.local_env({"PATH": str(tmp_path)}, ports, "m", tmp_path)["ALERTMANAGER_BIN"] == "alertmanager"
    _fake_bin(tmp_path, "prometheus-alertmanager", 0)
    env = stack.local_env({"PATH": str(tmp_path)}, ports, "m", tmp_path)
    assert env["ALERTMANAGER_BIN"] == "prometheus-alertmanager"


def test_local_env_uses_a_real_tensorflow_model_server_when_on_path(tmp_path):
    _fake_bin(tmp_path, "tensorflow_model_server", 0)
    env = stack.local_env({"PATH": str(tmp_path)}, stack.ports_from_env({}), "m", tmp_path)
    assert env["TF_SERVING_BIN"] == "tensorflow_model_server"
