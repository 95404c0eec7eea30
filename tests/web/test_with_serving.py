"""The frontend in front of the project's real TF-Serving-compatible server and a real SavedModel."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from harness.processes import Serving, frontend, wait_until
from modelops.core.tfserving_client import ServingClient
from tests.web.conftest import MODEL

pytestmark = pytest.mark.slow


def _publish(project, version: int, seed: int) -> None:
    from modelops.core.store import ModelStore
    from modelops.trainer.model import network as model

    exported = project.root / f"export-{version}"
    model.export(model.build(learning_rate=0.01, seed=seed), exported)
    ModelStore(project.cfg.models_dir).publish(exported, version, {"version": version, "test_accuracy_percent": 98.0})


def _wait_for_version(url: str, version: int) -> None:
    wait_until(lambda: requests.get(f"{url}/readyz", timeout=10).json().get("version") == version, seconds=90,
               what=f"the frontend reporting version {version} ready")


@pytest.fixture
def serving(project):
    _publish(project, 1, seed=1)
    server = Serving(project.cfg.models_dir, MODEL).wait_listening()
    yield server
    server.stop()


def test_frontend_answers_exactly_what_serving_answers_and_follows_a_promotion(serving, project, tmp_path):
    serving = serving.url
    rows = [[1.5, 2.3], [0.8, -1.2], [-3.0, 0.25]]
    direct = requests.post(f"{serving}/v1/models/{MODEL}:predict", json={"instances": rows}, timeout=30).json()
    with frontend(serving, MODEL, project.config_path, tmp_path, workers=1) as url:
        _wait_for_version(url, 1)
        r = requests.post(f"{url}/predict", json={"instances": rows}, timeout=30)
        assert r.status_code == 200
        assert r.headers["X-Model-Version"] == "1"
        assert np.allclose(r.json()["predictions"], direct["predictions"], atol=1e-6)
        assert all(0.0 <= p[0] <= 1.0 for p in r.json()["predictions"])

        form = requests.post(
            f"{url}/predict",
            data="x1=1.5&x2=2.3",
            timeout=30,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert np.allclose(form.json()["predictions"][0], direct["predictions"][0], atol=1e-6)

        _publish(project, 2, seed=2)
        _wait_for_version(url, 2)
        r = requests.post(f"{url}/predict", json={"instances": rows}, timeout=30)
        assert (r.status_code, r.headers["X-Model-Version"]) == (200, "2")
        assert r.json()["predictions"] != direct["predictions"]  # a different model answers now


def test_a_hung_serving_gets_every_parallel_request_its_error_within_the_timeout(serving, project, tmp_path):
    timeout = 3.0
    with frontend(serving.url, MODEL, project.config_path, tmp_path, workers=2,
                  TF_TIMEOUT_SECONDS=str(timeout)) as url:
        _wait_for_version(url, 1)
        os.kill(serving.proc.pid, signal.SIGSTOP)  # hung: connections are accepted, never answered
        try:
            time.sleep(ServingClient("http://x").version_ttl + 0.5)  # the cached version expires: all must ask

            def predict(started: float) -> tuple[int, float]:
                r = requests.post(f"{url}/predict", json={"instances": [[1.5, 2.3]]}, timeout=60)
                return r.status_code, time.monotonic() - started

            with ThreadPoolExecutor(8) as pool:
                started = time.monotonic()
                answers = list(pool.map(predict, [started] * 8))
        finally:
            os.kill(serving.proc.pid, signal.SIGCONT)
    assert {status for status, _ in answers} <= {503, 504}, answers
    assert max(seconds for _, seconds in answers) <= timeout + 1, answers
