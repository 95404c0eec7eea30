"""Trainer fixtures: the scheduler as a service, the local serving server, a dead URL."""

from __future__ import annotations

import json
import sys
import time

import pytest

from harness.processes import Service, Serving
from harness.servers import free_port
from modelops.core.config import load_config
from modelops.core.errors import ServingError
from modelops.core.tfserving_client import ServingClient


def dead_url() -> str:
    """A local URL where nothing listens: connection refused at once."""
    return f"http://127.0.0.1:{free_port()}"


def with_config(config, **overrides):
    """The same project with some config sections changed."""
    raw = json.loads((config.root / "config.json").read_text())
    for section, values in overrides.items():
        raw[section].update(values)
    (config.root / "config.json").write_text(json.dumps(raw))
    return load_config(config.root / "config.json")


def scheduler(config, extra_args=(), **env) -> Service:
    """``python -m modelops.trainer.scheduler`` on ``config``; metrics on a free port, serving unreachable."""
    return Service([sys.executable, "-m", "modelops.trainer.scheduler", "--config", str(config.root / "config.json"),
                    *extra_args], env={"TRAINER_METRICS_PORT": "0", "TF_HOST": dead_url(), **env})


def metrics_port(service: Service) -> int:
    return int(service.wait_for("metrics on :").split("metrics on :")[1].split("/")[0])


@pytest.fixture
def serving():
    """Start the project's serving server on a config's models dir; yields a starter."""
    started: list[Serving] = []

    def start(config, expect_version: int) -> ServingClient:
        service = Serving(config.models_dir, config.model_name)
        started.append(service)
        client = ServingClient(service.url, config.model_name, timeout=10)
        wait_served(client, expect_version, service)
        return client

    yield start
    for service in started:
        service.stop()


def available(client: ServingClient) -> set[int]:
    try:
        return {int(e["version"]) for e in client.status() if e.get("state") == "AVAILABLE"}
    except ServingError:
        return set()


def wait_served(client: ServingClient, version: int, service: Service | None = None, timeout: float = 90) -> None:
    """Until ``version`` is the only AVAILABLE version (serving polls the models dir every second)."""
    deadline = time.monotonic() + timeout
    while available(client) != {version}:
        if service is not None and service.proc.poll() is not None:
            raise AssertionError(f"serving exited:\n{service.output}")
        if time.monotonic() > deadline:
            raise AssertionError(f"serving never settled on v{version}: {available(client)}")
        time.sleep(0.2)
