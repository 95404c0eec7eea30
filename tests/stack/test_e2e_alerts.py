"""End to end, local mode: an alert reaches the operator's webhook through real Prometheus and
real Alertmanager, and local mode listens on 127.0.0.1 only.

``scripts/run_all.sh --local`` in a fresh copy of the repository with NOTIFY_WEBHOOK_URL set to
a tiny HTTP receiver in this test. The copy's monitoring files are sped up (1 s scrapes and
evaluations, ServingDown after 3 s, Alertmanager groups after 1 s) so the chain answers in
seconds. Stopping the serving process (SIGSTOP: it stops answering, as a hung server does)
must bring a ServingDown notification to the receiver, and resuming it a resolved one.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import requests

from harness import tool
from harness.servers import webhook_receiver
from tests.stack.test_e2e_local import _copy_repo, _free_ports, _processes_in, _tear_down, _wait

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

PORT_NAMES = ["FRONTEND_PORT", "TF_REST_PORT", "TF_GRPC_PORT", "PROMETHEUS_PORT", "TRAINER_METRICS_PORT",
              "ALERTMANAGER_PORT"]
SPEED_UPS = {
    "monitoring/prometheus.yml": [("  scrape_interval: 15s\n  evaluation_interval: 15s\n",
                                   "  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n")],
    "monitoring/alerts.yml": [('expr: up{job="tfserving"} == 0\n        for: 2m\n',
                               'expr: up{job="tfserving"} == 0\n        for: 3s\n')],
    "monitoring/alertmanager.yml": [("group_wait: 30s", "group_wait: 1s"), ("group_interval: 5m", "group_interval: 1s")],
}


def _speed_up(copy: Path) -> None:
    for name, replacements in SPEED_UPS.items():
        text = (copy / name).read_text()
        for old, new in replacements:
            assert old in text, f"{name} changed: update SPEED_UPS in this test"
            text = text.replace(old, new)
        (copy / name).write_text(text)
    config = json.loads((copy / "config.json").read_text())
    config["schedule"]["cron"] = "0 2 * * 0"  # no scheduled retrain during the test
    config["train"]["epochs"] = 5
    (copy / "config.json").write_text(json.dumps(config, indent=2))


def _listening(pids: set[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket the processes ``pids`` listen on (IPv4-mapped IPv6 as IPv4)."""
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    found = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for row in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].split(":")
                raw = bytes.fromhex(address)
                # /proc prints the address as host-order 32-bit words.
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                ip = ipaddress.ip_address(socket.inet_ntop(family, raw))
                found.add((str(getattr(ip, "ipv4_mapped", None) or ip), int(port, 16)))  # gRPC: ::ffff:127.0.0.1
    return found


def _alerts(received: list[dict], name: str, status: str) -> list[dict]:
    return [a for body in received if body.get("status") == status and body.get("receiver") == "operator"
            for a in body.get("alerts", []) if a["labels"].get("alertname") == name and a["status"] == status]


def test_serving_stopped_reaches_the_webhook_and_every_service_listens_on_localhost(tmp_path_factory):
    for name in ("prometheus", "prometheus-alertmanager"):  # run_all.sh --local starts them
        tool(name)
    copy = tmp_path_factory.mktemp("alerts") / "repo"
    _copy_repo(copy)
    _speed_up(copy)
    ports = dict(zip(PORT_NAMES, _free_ports(len(PORT_NAMES)), strict=True))
    env = {k: v for k, v in os.environ.items() if k not in ("MODELOPS_CONFIG", "TF_HOST", "MODEL_NAME", "BIND_ADDRESS")}
    env.update({k: str(v) for k, v in ports.items()}, STACK_READY_TIMEOUT="600")
    prometheus = f"http://127.0.0.1:{ports['PROMETHEUS_PORT']}"
    log_path = copy.parent / "run_all.log"

    with webhook_receiver() as (base, received, _), log_path.open("wb") as log:
        env["NOTIFY_WEBHOOK_URL"] = f"{base}/hook"
        proc = subprocess.Popen(["scripts/run_all.sh", "--local"], cwd=copy, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        serving_pid = None
        try:
            _wait("the stack to be ready", lambda: b"stack: ready" in log_path.read_bytes(), timeout=900, proc=proc)

            # Every socket any stack process listens on is on 127.0.0.1, the six ports included.
            listening = _listening({pid for pid, _ in _processes_in(copy)})
            assert set(ports.values()) <= {port for _, port in listening}, listening
            assert {address for address, _ in listening} == {"127.0.0.1"}, listening

            def serving_up_and_alertmanager_known():
                targets = requests.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
                managers = requests.get(f"{prometheus}/api/v1/alertmanagers", timeout=5).json()["data"]
                return managers["activeAlertmanagers"] and any(
                    t["labels"]["job"] == "tfserving" and t["health"] == "up" for t in targets)

            _wait("Prometheus to scrape serving and know Alertmanager", serving_up_and_alertmanager_known,
                  timeout=120, proc=proc)
            [serving_pid] = [pid for pid, cmd in _processes_in(copy) if "-m modelops.localserving" in cmd]
            os.kill(serving_pid, signal.SIGSTOP)
            firing = _wait("ServingDown at the webhook", lambda: _alerts(received, "ServingDown", "firing"),
                           timeout=120, proc=proc, interval=0.5)
            assert firing[0]["labels"]["job"] == "tfserving" and firing[0]["labels"]["severity"] == "critical"
            assert "TF Serving" in firing[0]["annotations"]["summary"]

            os.kill(serving_pid, signal.SIGCONT)
            serving_pid = None
            _wait("ServingDown resolved at the webhook", lambda: _alerts(received, "ServingDown", "resolved"),
                  timeout=120, proc=proc, interval=0.5)
            assert any(body.get("record", {}).get("event") == "promote" for body in received), "decisions: same webhook"

            os.killpg(proc.pid, signal.SIGINT)
            assert proc.wait(timeout=90) == 0
            _wait("every stack process to exit", lambda: not _processes_in(copy), timeout=10, interval=0.5)
        finally:
            if serving_pid is not None:
                os.kill(serving_pid, signal.SIGCONT)
            _tear_down(proc, copy)
            print(log_path.read_text(errors="replace")[-20000:])
