"""Trainer fixtures: a fast config, one shared trained project, the local serving server, and
a helper that follows a service's output line by line."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from modelops.config import load_config
from modelops.errors import ServingError
from modelops.serving.client import ServingClient
from tests.conftest import REPO, write_config

FAST = {"train": {"epochs": 5}, "verify": {"timeout_seconds": 20.0}}
QUIET = lambda _line: None  # noqa: E731


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dead_url() -> str:
    """A local URL where nothing listens: connection refused at once."""
    return f"http://127.0.0.1:{free_port()}"


def fast_config(directory: Path, **overrides):
    """A project config that trains in about two seconds (still well above the 97% gate)."""
    sections = {k: dict(v) for k, v in FAST.items()}
    for section, values in overrides.items():
        sections.setdefault(section, {}).update(values)
    return load_config(write_config(directory, **sections))


@pytest.fixture(scope="session")
def _fast_template(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer-template")
    from modelops import pipeline

    result = pipeline.retrain(fast_config(root), echo=QUIET)
    assert result.outcome == "promoted", result.message
    return root


@pytest.fixture
def fast_project(_fast_template, tmp_path):
    """A fast-config project that already publishes v1 (a copy of the session's)."""
    root = tmp_path / "project"
    shutil.copytree(_fast_template, root)
    return load_config(root / "config.json")


def with_config(config, **overrides):
    """The same project with some config sections changed."""
    raw = json.loads((config.root / "config.json").read_text())
    for section, values in overrides.items():
        raw[section].update(values)
    (config.root / "config.json").write_text(json.dumps(raw))
    return load_config(config.root / "config.json")


class Service:
    """A subprocess whose merged output is collected by a thread, to wait for lines."""

    def __init__(self, args, env=None, cwd=REPO):
        self.proc = subprocess.Popen(
            args, cwd=cwd, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} never appeared; output so far:\n{self.output}")

    def stop(self, sig=None, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig) if sig else self.proc.terminate()
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code


def scheduler(config, **env) -> Service:
    """``python -m modelops.scheduler`` on ``config``; metrics on a free port, serving unreachable."""
    return Service([sys.executable, "-m", "modelops.scheduler", "--config", str(config.root / "config.json")],
                   env={"TRAINER_METRICS_PORT": "0", "TF_HOST": dead_url(), **env})


def metrics_port(service: Service) -> int:
    return int(service.wait_for("metrics on :").split("metrics on :")[1].split("/")[0])


@pytest.fixture
def serving():
    """Start the project's TF-Serving-compatible server on a config's models dir; yields a starter."""
    if importlib.util.find_spec("modelops.serving.__main__") is None:
        pytest.skip("the local serving server (python -m modelops.serving) has not landed yet")
    started: list[Service] = []

    def start(config, expect_version: int) -> ServingClient:
        port = free_port()
        service = Service([sys.executable, "-m", "modelops.serving", "--port", "0", "--rest_api_port", str(port),
                           "--model_name", config.model_name, "--model_base_path", str(config.models_dir),
                           "--file_system_poll_wait_seconds", "1"])
        started.append(service)
        client = ServingClient(f"http://127.0.0.1:{port}", config.model_name, timeout=10)
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
