"""A local stand-in for a Kubernetes Service over several TF Serving replicas: three real serving
processes (two on the shared models directory, one on a copy that lags behind) behind haproxy
balancing connections round-robin, as kube-proxy does, with the real frontend in front and a
client looping on it. Promotions must be verified on every replica, a lagging replica must get
the version rolled back everywhere, and no user request may fail on the way."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from pathlib import Path

import pytest
import requests

from harness import tool
from harness.processes import Service, Serving, frontend, wait_until
from harness.servers import free_port
from modelops.core import history
from modelops.core.store import ModelStore
from modelops.core.tfserving_client import ServingClient
from modelops.trainer.retrain import run
from modelops.trainer.retrain.verify import ServingVerifier
from tests.trainer.conftest import available, wait_served, with_config

pytestmark = pytest.mark.slow
ROWS = [[1.5, 2.3], [0.8, -1.2]]


@contextlib.contextmanager
def haproxy(backends: list[str], workdir: Path):
    """haproxy in TCP mode, round-robin over ``backends`` (base URLs); yields its base URL."""
    binary = tool("haproxy")
    port = free_port()
    servers = "\n".join(f"    server r{i} {url.split('://')[1]}" for i, url in enumerate(backends))
    config = workdir / "haproxy.cfg"
    config.write_text(f"""global
    maxconn 256
defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
frontend service
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance roundrobin
{servers}
""")
    service = Service([binary, "-db", "-f", str(config)])
    try:
        service.wait_port(port, seconds=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        service.stop()


class LoopingClient:
    """Threads posting to the frontend's /predict until stopped; every answer is kept."""

    def __init__(self, url: str, threads: int = 2):
        self.url, self.stop = url, threading.Event()
        self.versions: list[str] = []
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    def _loop(self):
        with requests.Session() as session:
            while not self.stop.is_set():
                try:
                    r = session.post(f"{self.url}/predict", json={"instances": ROWS}, timeout=30)
                except requests.RequestException as exc:
                    self.failures.append(repr(exc))
                    continue
                if r.status_code == 200:
                    self.versions.append(r.headers["X-Model-Version"])
                else:
                    self.failures.append(f"{r.status_code} {r.text[:200]}")

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        wait_until(lambda: len(self.versions) >= 10 or self.failures, what="the first answers")
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(60)


def sync_versions(source: Path, target: Path, stop: threading.Event) -> None:
    """What a sync sidecar does for a replica on its own volume: copy each new version, atomically."""
    while not stop.wait(0.2):
        for version in source.iterdir():
            if version.name.isdigit() and not (target / version.name).exists():
                staging = target / f".sync-{version.name}"
                shutil.copytree(version, staging)
                os.rename(staging, target / version.name)


@pytest.fixture
def cluster(trained_project, tmp_path):
    """v1 on three replicas behind haproxy, the frontend on haproxy; yields what the test needs."""
    config = with_config(trained_project, verify={"timeout_seconds": 10.0})
    lagging = tmp_path / "lagging-volume"
    shutil.copytree(config.models_dir, lagging)
    replicas = [Serving(config.models_dir, config.model_name), Serving(config.models_dir, config.model_name),
                Serving(lagging, config.model_name)]
    try:
        clients = [ServingClient(r.wait_listening().url, config.model_name) for r in replicas]
        for client in clients:
            wait_served(client, 1)
        with haproxy([r.url for r in replicas], tmp_path) as service, \
                frontend(service, config.model_name, config.root / "config.json", tmp_path) as url:
            wait_until(lambda: requests.get(f"{url}/readyz", timeout=10).ok, what="the frontend ready")
            yield config, lagging, clients, url
    finally:
        for replica in replicas:  # all at once: each takes a few seconds to stop
            replica.proc.terminate()
        for replica in replicas:
            replica.stop()


def retrain(config, clients, monkeypatch):
    """The CLI's retrain, in-process (TensorFlow is loaded already), verifying on the listed replicas."""
    monkeypatch.setenv("TF_SERVING_REPLICAS", ",".join(c.base_url for c in clients))
    monkeypatch.setenv("TF_HOST", "http://127.0.0.1:1")  # not asked: the replicas are
    lines: list[str] = []
    result = run.retrain(config, echo=lines.append, verifier=ServingVerifier(), force=True)  # same data on purpose
    return result, "\n".join([result.message, *lines])


def test_promotion_is_verified_on_every_replica_and_a_lagging_one_rolls_back_everywhere(cluster, monkeypatch):
    config, lagging, clients, url = cluster
    stop_sync = threading.Event()
    syncer = threading.Thread(target=sync_versions, args=(config.models_dir, lagging, stop_sync), daemon=True)
    syncer.start()
    with LoopingClient(url) as load:
        result, output = retrain(config, clients, monkeypatch)
        stop_sync.set()
        syncer.join(10)
        assert (result.outcome, result.version) == ("promoted", 2), output
        assert "verify: v2 is served and answers like the gated model" in output
        for client in clients:
            wait_served(client, 2)
        wait_until(lambda: load.versions[-1] == "2", what="the frontend answering with v2")

        # The third replica's volume stops syncing: v3 reaches two replicas only.
        result, output = retrain(config, clients, monkeypatch)
        assert (result.outcome, result.version) == ("rolled_back", 3), output
        for client in clients:
            wait_served(client, 2)
    assert load.failures == []
    assert {"1", "2"} <= set(load.versions)

    events = history.read(config.history_path)
    assert [e["event"] for e in events[-5:]] == ["promote", "verified", "promote", "verify-failed", "rollback"]
    failed = next(e for e in reversed(events) if e["event"] == "verify-failed")
    assert failed["version"] == 3 and clients[2].base_url in " ".join(failed["reasons"])
    store = ModelStore(config.models_dir)
    assert (store.latest(), 3 in store.retired()) == (2, True)
    assert all(available(client) == {2} for client in clients)
