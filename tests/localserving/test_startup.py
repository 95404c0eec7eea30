"""Startup like TF Serving: no port before the first version loads; a broken only version is fatal."""

from __future__ import annotations

import time

import pytest
import requests

from harness.processes import Serving
from harness.servers import port_open
from tests.localserving.conftest import MODEL, ROWS, local_only

pytestmark = [pytest.mark.slow, pytest.mark.contract, local_only]


@pytest.fixture(scope="module")
def late(tmp_path_factory):
    """A server started on an empty model dir, with a 1 ms REST timeout."""
    root = tmp_path_factory.mktemp("late")
    base = root / "models"
    base.mkdir()
    server = Serving(base, MODEL, "--rest_api_timeout_in_ms", "1", "--rest_api_max_instances", "40000",
                     grpc=True)
    yield server, base
    server.stop()


@pytest.fixture
def late_serving(late, models):
    server, base = late
    if not (base / "1").exists():
        models.publish("a", base, 1)
    server.wait_listening()
    return server


def test_ports_open_only_once_the_first_version_is_available(late, models):
    server, base = late
    deadline = time.monotonic() + 60
    while server.output.count("No versions of servable m found under base path") < 2:  # polled twice: up, waiting
        assert server.proc.poll() is None and time.monotonic() < deadline, server.output
        time.sleep(0.1)
    assert not port_open(server.rest_port) and not port_open(server.grpc_port)
    models.publish("a", base, 1)
    server.wait_listening()
    assert port_open(server.grpc_port)
    status = requests.get(f"http://127.0.0.1:{server.rest_port}/v1/models/m", timeout=30).json()
    assert [(s["version"], s["state"]) for s in status["model_version_status"]] == [("1", "AVAILABLE")]


def test_a_request_past_rest_api_timeout_is_504(late_serving):
    url = f"http://127.0.0.1:{late_serving.rest_port}/v1/models/m:predict"
    response = requests.post(url, json={"instances": ROWS * 10_000}, timeout=60)
    assert response.status_code == 504
    assert list(response.json()) == ["error"]


def test_startup_fails_when_the_only_version_cannot_load(tmp_path, models):
    base = tmp_path / "models"
    base.mkdir()
    staging = models.stage("a", base, 1)
    (staging / "saved_model.pb").unlink()
    staging.rename(base / "1")
    server = Serving(base, MODEL, "--max_num_load_retries", "0")
    try:
        deadline = time.monotonic() + 60
        while server.proc.poll() is None and time.monotonic() < deadline:
            assert not port_open(server.rest_port)
            time.sleep(0.1)
        assert server.proc.returncode not in (None, 0)
        assert "Failed to start server" in server.output
    finally:
        server.stop()
