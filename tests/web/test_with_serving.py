"""The frontend in front of the project's real TF-Serving-compatible server and a real SavedModel."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

from tests.web.conftest import MODEL, REPO, free_port, gunicorn, wait_until_up

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (REPO / "modelops" / "serving" / "server.py").exists(), reason="modelops/serving/server.py not written yet"
    ),
]


def _publish(project, version: int, seed: int) -> None:
    from modelops import model
    from modelops.store import ModelStore

    exported = project.root / f"export-{version}"
    model.export(model.build(learning_rate=0.01, seed=seed), exported)
    ModelStore(project.cfg.models_dir).publish(exported, version, {"version": version, "test_accuracy_percent": 98.0})


def _wait_for_version(url: str, version: int, seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        r = requests.get(f"{url}/readyz", timeout=10)
        if r.status_code == 200 and r.json()["version"] == version:
            return
        time.sleep(0.2)
    raise AssertionError(f"serving never reported version {version} AVAILABLE")


@pytest.fixture
def serving(project, tmp_path):
    _publish(project, 1, seed=1)
    port = free_port()
    log = open(tmp_path / "serving.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelops.serving",
            "--rest_api_port",
            str(port),
            "--port",
            "0",
            "--model_name",
            MODEL,
            "--model_base_path",
            str(project.cfg.models_dir),
        ],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/v1/models/{MODEL}", proc, seconds=120)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_frontend_answers_exactly_what_serving_answers_and_follows_a_promotion(serving, project, tmp_path):
    rows = [[1.5, 2.3], [0.8, -1.2], [-3.0, 0.25]]
    direct = requests.post(f"{serving}/v1/models/{MODEL}:predict", json={"instances": rows}, timeout=30).json()
    with gunicorn(serving, project.config_path, tmp_path, workers=1) as url:
        _wait_for_version(url, 1)
        r = requests.post(f"{url}/predict", json={"instances": rows}, timeout=30)
        assert r.status_code == 200
        assert r.headers["X-Model-Version"] == "1"
        assert r.json()["predictions"] == pytest.approx(direct["predictions"])
        assert all(0.0 <= p[0] <= 1.0 for p in r.json()["predictions"])

        form = requests.post(
            f"{url}/predict",
            data="x1=1.5&x2=2.3",
            timeout=30,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert form.json()["predictions"][0] == pytest.approx(direct["predictions"][0])

        _publish(project, 2, seed=2)
        _wait_for_version(url, 2)
        r = requests.post(f"{url}/predict", json={"instances": rows}, timeout=30)
        assert (r.status_code, r.headers["X-Model-Version"]) == (200, "2")
        assert r.json()["predictions"] != direct["predictions"]  # a different model answers now
