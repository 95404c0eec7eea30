"""Issue 33, finding 2: the notification secret never leaves the host, and Prometheus and
Alertmanager ask for a password (and still scrape and alert) when the stack opens them."""

from __future__ import annotations

import os
import stat
import time

import pytest
import requests
from ruamel.yaml import YAML

from harness import REPO, tool
from harness.processes import Service
from harness.servers import free_port
from modelops import monitoring_auth, stack

SLACK = "https://hooks.slack.com/services/T000/B000/SLACKTOKEN"
WEBHOOK = "https://hooks.example.com/notify?token=WEBHOOKTOKEN"
PASSWORD = "correct horse battery"  # noqa: S105 (a test password)


def _render(tmp_path, url: str):
    rendered = tmp_path / "rendered.yml"
    result = Service(["sh", "monitoring/alertmanager.sh", "monitoring/alertmanager.yml", str(rendered), "true"],
                     env={"NOTIFY_WEBHOOK_URL": url})
    assert result.proc.wait(30) == 0, result.output
    return rendered


@pytest.mark.parametrize(("url", "used", "unused"), [(SLACK, "operator-slack", "operator"),
                                                     (WEBHOOK, "operator", "operator-slack")])
def test_only_the_receiver_in_use_is_rendered_readable_by_its_owner_alone(tmp_path, url, used, unused):
    rendered = _render(tmp_path, url)
    assert stat.S_IMODE(os.stat(rendered).st_mode) == 0o600
    config = YAML(typ="safe").load(rendered)
    assert config["route"]["receiver"] == used
    assert unused not in {r["name"] for r in config["receivers"]}
    assert rendered.read_text().count(url) == 1, "the URL is written once, in the receiver in use"


@pytest.fixture
def monitoring(tmp_path):
    """Prometheus and Alertmanager as local mode starts them with MONITORING_PASSWORD set."""
    ports = {**stack.DEFAULT_PORTS, "PROMETHEUS_PORT": free_port(), "ALERTMANAGER_PORT": free_port()}
    user, password = monitoring_auth.credentials({monitoring_auth.PASSWORD_ENV: PASSWORD}, "127.0.0.1")
    web, secret = monitoring_auth.write_files(tmp_path, user, password)
    config = stack.local_prometheus_config((REPO / "monitoring/prometheus.yml").read_text(), ports,
                                           REPO / "monitoring")
    (tmp_path / "prometheus.yml").write_text(monitoring_auth.with_basic_auth(config, user, secret))
    am = Service(["sh", "monitoring/alertmanager.sh", "monitoring/alertmanager.yml", str(tmp_path / "am.yml"),
                  tool("prometheus-alertmanager"), f"--storage.path={tmp_path / 'am'}",
                  f"--web.listen-address=127.0.0.1:{ports['ALERTMANAGER_PORT']}", f"--web.config.file={web}",
                  "--cluster.listen-address="], env={"NOTIFY_WEBHOOK_URL": SLACK})
    prom = Service([tool("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'prom'}", f"--web.config.file={web}",
                    f"--web.listen-address=127.0.0.1:{ports['PROMETHEUS_PORT']}"])
    try:
        am.wait_port(ports["ALERTMANAGER_PORT"], 60)
        prom.wait_port(ports["PROMETHEUS_PORT"], 60)
        yield (f"http://127.0.0.1:{ports['PROMETHEUS_PORT']}", f"http://127.0.0.1:{ports['ALERTMANAGER_PORT']}",
               (user, password))
    finally:
        prom.stop()
        am.stop()


def test_anonymous_clients_cannot_silence_alerts_or_read_the_config(monitoring):
    prometheus, alertmanager, auth = monitoring
    silence = {"matchers": [{"name": "alertname", "value": ".+", "isRegex": True}], "startsAt": "2026-01-01T00:00:00Z",
               "endsAt": "2027-01-01T00:00:00Z", "createdBy": "x", "comment": "mute everything"}
    assert requests.post(f"{alertmanager}/api/v2/silences", json=silence, timeout=10).status_code == 401
    assert requests.get(f"{alertmanager}/api/v2/status", timeout=10).status_code == 401
    assert requests.get(f"{prometheus}/api/v1/query", params={"query": "up"}, timeout=10).status_code == 401
    status = requests.get(f"{alertmanager}/api/v2/status", auth=auth, timeout=10)
    assert status.status_code == 200 and "SLACKTOKEN" not in status.text, "the Slack URL shows masked"


def test_prometheus_still_scrapes_itself_and_reaches_alertmanager_with_the_password(monitoring):
    prometheus, alertmanager, auth = monitoring
    assert_scrapes_itself_and_knows(prometheus, alertmanager, auth)


def assert_scrapes_itself_and_knows(prometheus: str, alertmanager: str, auth) -> None:
    """Behind basic auth, Prometheus's own scrape passes (within 60 s) and it knows ``alertmanager``."""
    deadline = time.monotonic() + 60
    while True:
        up = requests.get(f"{prometheus}/api/v1/query", params={"query": 'up{job="prometheus"}'}, auth=auth,
                          timeout=10).json()["data"]["result"]
        if up or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert [r["value"][1] for r in up] == ["1"], "its own scrape passes the auth"
    managers = requests.get(f"{prometheus}/api/v1/alertmanagers", auth=auth, timeout=10).json()["data"]
    assert [m["url"] for m in managers["activeAlertmanagers"]] == [f"{alertmanager}/api/v2/alerts"]


def test_the_launcher_refuses_to_open_monitoring_without_a_password(monkeypatch, tmp_path):
    monkeypatch.setattr(stack, "STACK_DIR", tmp_path)
    with pytest.raises(stack.StackError, match=monitoring_auth.PASSWORD_ENV):
        stack._monitoring_auth({"BIND_ADDRESS": "0.0.0.0"}, "")
    env = {"BIND_ADDRESS": "0.0.0.0", monitoring_auth.PASSWORD_ENV: PASSWORD}
    derived = stack._monitoring_auth(env, (REPO / "monitoring/prometheus.yml").read_text())
    web = tmp_path / "web.yml"
    assert env[monitoring_auth.WEB_CONFIG_ENV] == str(web) and PASSWORD not in web.read_text()
    assert stat.S_IMODE(os.stat(web).st_mode) == stat.S_IMODE(os.stat(tmp_path / "monitoring-password").st_mode) == 0o600
    assert derived.count("password_file") == 2
    assert stack._monitoring_auth({"BIND_ADDRESS": "127.0.0.1"}, "x") == "x", "loopback without a password: as before"
