"""Issue 33, finding 2 in compose: Prometheus and Alertmanager start through monitoring/web_auth.sh,
which puts them behind basic auth from the launcher's hash and refuses to open them unprotected.

The busybox images cannot run here (the container engine is not the tests'): the script runs the
Debian binaries the same way the compose entrypoints run the images' own."""

from __future__ import annotations

import subprocess
import sys

import bcrypt
import pytest
import requests
from ruamel.yaml import YAML

from harness import REPO, tool
from harness.processes import Service
from harness.servers import free_port
from modelops import monitoring_auth, stack
from tests.stack.test_monitoring_auth import assert_scrapes_itself_and_knows

PASSWORD = "correct horse battery"  # noqa: S105 (a test password)
AUTH = ("modelops", PASSWORD)


def _env(tmp_path, **extra):
    """What docker-compose.yml passes the two services, with the hash the launcher computes."""
    env = monitoring_auth.compose_env({monitoring_auth.PASSWORD_ENV: PASSWORD, "BIND_ADDRESS": "0.0.0.0"})
    return {"WEB_AUTH_HASH": env[monitoring_auth.HASH_ENV], "WEB_AUTH_PASSWORD": PASSWORD,
            "WEB_PUBLISHED_ON": "0.0.0.0", "WEB_AUTH_DIR": str(tmp_path), **extra}


@pytest.fixture
def monitoring(tmp_path):
    ports = {**stack.DEFAULT_PORTS, "PROMETHEUS_PORT": free_port(), "ALERTMANAGER_PORT": free_port()}
    (tmp_path / "am").mkdir()
    (tmp_path / "prom").mkdir()
    config = tmp_path / "prometheus.yml"  # the compose file's config, with local targets
    config.write_text(stack.local_prometheus_config((REPO / "monitoring/prometheus.yml").read_text(), ports,
                                                    REPO / "monitoring"))
    am = Service(["sh", "monitoring/web_auth.sh", "sh", "monitoring/alertmanager.sh", "monitoring/alertmanager.yml",
                  str(tmp_path / "am.yml"), tool("prometheus-alertmanager"), f"--storage.path={tmp_path / 'am'}",
                  f"--web.listen-address=127.0.0.1:{ports['ALERTMANAGER_PORT']}", "--cluster.listen-address="],
                 env=_env(tmp_path / "am"))
    prom = Service(["sh", "monitoring/web_auth.sh", tool("prometheus"), f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'prom' / 'data'}",
                    f"--web.listen-address=127.0.0.1:{ports['PROMETHEUS_PORT']}"], env=_env(tmp_path / "prom"))
    try:
        am.wait_port(ports["ALERTMANAGER_PORT"], 60)
        prom.wait_port(ports["PROMETHEUS_PORT"], 60)
        yield f"http://127.0.0.1:{ports['PROMETHEUS_PORT']}", f"http://127.0.0.1:{ports['ALERTMANAGER_PORT']}"
    finally:
        prom.stop()
        am.stop()


def test_compose_monitoring_refuses_anonymous_clients_and_still_scrapes_and_alerts(monitoring, tmp_path):
    prometheus, alertmanager = monitoring
    assert requests.post(f"{alertmanager}/api/v2/silences", json={}, timeout=10).status_code == 401
    assert requests.get(f"{prometheus}/api/v1/targets", timeout=10).status_code == 401
    assert_scrapes_itself_and_knows(prometheus, alertmanager, AUTH)
    rules = requests.get(f"{prometheus}/api/v1/rules", auth=AUTH, timeout=10).json()["data"]["groups"]
    assert rules, "the rule files are still found from the derived config"
    # the containers' healthcheck: passes with the credentials, fails without
    probe = ["sh", "monitoring/web_auth.sh", "--probe", f"{prometheus}/-/ready"]
    assert subprocess.run(probe, cwd=REPO, env=_env(tmp_path), timeout=30).returncode == 0
    assert subprocess.run(probe, cwd=REPO, env={"PATH": "/usr/bin:/bin"}, timeout=30).returncode != 0


@pytest.mark.parametrize(("env", "named"), [
    ({"WEB_PUBLISHED_ON": "0.0.0.0"}, "set MONITORING_PASSWORD"),
    ({"WEB_PUBLISHED_ON": "0.0.0.0", "WEB_AUTH_PASSWORD": PASSWORD}, "MONITORING_PASSWORD_HASH is not"),
    ({"WEB_AUTH_HASH": "$1$md5$notbcrypt"}, "not a bcrypt hash"),
])
def test_monitoring_is_not_started_open_or_half_configured(tmp_path, env, named):
    result = subprocess.run(["sh", "monitoring/web_auth.sh", "touch", str(tmp_path / "started")], cwd=REPO,
                            env={"PATH": "/usr/bin:/bin", "WEB_AUTH_DIR": str(tmp_path), **env},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and named in result.stderr
    assert not (tmp_path / "started").exists()


def test_on_loopback_without_a_password_they_start_as_before(tmp_path):
    result = subprocess.run(["sh", "monitoring/web_auth.sh", "echo", "--flag"], cwd=REPO, capture_output=True,
                            text=True, env={"PATH": "/usr/bin:/bin", "WEB_PUBLISHED_ON": "127.0.0.1"}, timeout=30)
    assert result.returncode == 0 and result.stdout.strip() == "--flag"


def test_the_compose_services_start_and_probe_through_web_auth():
    services = YAML(typ="safe").load((REPO / "docker-compose.yml").read_text())["services"]
    for name, port in (("prometheus", 9090), ("alertmanager", 9093)):
        service = services[name]
        assert service["entrypoint"][:2] == ["/bin/sh", "/etc/monitoring/web_auth.sh"], name
        assert "./monitoring/web_auth.sh:/etc/monitoring/web_auth.sh:ro" in service["volumes"]
        assert service["environment"]["WEB_PUBLISHED_ON"] == "${BIND_ADDRESS:-127.0.0.1}"
        assert service["environment"]["WEB_AUTH_HASH"] == "${MONITORING_PASSWORD_HASH:-}"
        assert service["healthcheck"]["test"][-2:] == ["--probe", f"http://127.0.0.1:{port}/-/ready"]


def test_the_launcher_hashes_the_password_for_compose_and_refuses_an_open_network():
    env = monitoring_auth.compose_env({"BIND_ADDRESS": "0.0.0.0", monitoring_auth.PASSWORD_ENV: PASSWORD})
    assert bcrypt.checkpw(PASSWORD.encode(), env[monitoring_auth.HASH_ENV].encode())
    with pytest.raises(monitoring_auth.AuthError, match=monitoring_auth.PASSWORD_ENV):
        monitoring_auth.compose_env({"BIND_ADDRESS": "0.0.0.0"})
    with pytest.raises(monitoring_auth.AuthError, match="not the hash"):
        monitoring_auth.compose_env({monitoring_auth.PASSWORD_ENV: PASSWORD, monitoring_auth.HASH_ENV: "$2b$10$x"})
    assert monitoring_auth.HASH_ENV not in monitoring_auth.compose_env({"BIND_ADDRESS": "127.0.0.1"})


def test_the_hash_command_prints_a_dotenv_line():
    result = subprocess.run([sys.executable, "-m", "modelops.monitoring_auth", "hash"], cwd=REPO, capture_output=True,
                            text=True, env={"PATH": "/usr/bin:/bin", monitoring_auth.PASSWORD_ENV: PASSWORD}, timeout=60)
    name, _, value = result.stdout.strip().partition("=")
    assert result.returncode == 0 and name == monitoring_auth.HASH_ENV
    assert bcrypt.checkpw(PASSWORD.encode(), value.strip("'").encode())
