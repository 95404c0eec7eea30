"""Fault drills: what production throws at the stack, with real serving, frontend and TensorFlow.

- a promotion while 8 clients hammer the frontend: zero failed requests;
- serving killed and restarted: the frontend answers 503 meanwhile and recovers by itself;
- the retrain killed with SIGKILL at random points, 10 trials, each followed by a clean run;
- a full disk and a read-only models/ during publish: a clear failure, the old version serves on.

Concurrent retrains are drilled in tests/trainer/retrain/test_run.py (lock contention, --wait).
"""

from __future__ import annotations

import collections
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from harness import REPO
from harness.processes import Serving, frontend, wait_until
from modelops.core import history
from modelops.core.store import ModelStore
from modelops.trainer.data import synthetic
from modelops.trainer.retrain import run
from modelops.trainer.retrain.verify import ServingVerifier
from tests.conftest import assert_no_partial_version, quiet

pytestmark = [pytest.mark.drill, pytest.mark.slow]
ROW = {"instances": [[1.5, 2.3]]}


@pytest.fixture
def project(trained_project):
    """A fast-training project that already publishes v1."""
    return trained_project


@contextlib.contextmanager
def hammer(url: str, clients: int = 8, seconds: float = 180):
    """``clients`` keep-alive loops on POST /predict until the block ends (or ``seconds`` pass)."""
    stop, versions, failures = threading.Event(), collections.Counter(), []
    deadline = time.monotonic() + seconds

    def loop():
        session = requests.Session()
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                r = session.post(f"{url}/predict", json=ROW, timeout=30)
            except requests.RequestException as exc:
                failures.append(repr(exc))
                continue
            if r.status_code == 200:
                versions[r.headers.get("X-Model-Version")] += 1
            else:
                failures.append(f"{r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        yield versions, failures
    finally:
        stop.set()
        for t in threads:
            t.join(60)


def test_promotion_under_load_fails_no_request(project, tmp_path, monkeypatch):
    serving = Serving(project.models_dir, project.model_name).wait_listening()
    try:
        with frontend(serving.url, project.model_name, project.root / "config.json", tmp_path) as url:
            wait_until(lambda: requests.get(f"{url}/readyz", timeout=5).ok, what="frontend ready")
            with hammer(url) as (versions, failures):
                wait_until(lambda: versions["1"] > 20, what="traffic on v1")
                synthetic.simulate(project, rows=300, noise=0.0, shift=0.0, seed=21)
                monkeypatch.setenv("TF_HOST", serving.url)
                result = run.retrain(project, echo=quiet, verifier=ServingVerifier())
                assert (result.outcome, result.version) == ("promoted", 2), result.message
                wait_until(lambda: versions["2"] > 20, seconds=30, what="traffic answered by v2")
            assert failures == []
            assert versions["1"] > 0 and versions["2"] > 0
            assert history.read(project.history_path)[-1]["event"] == "verified"
    finally:
        serving.stop()


def test_serving_killed_and_restarted_frontend_says_503_then_recovers(project, tmp_path):
    serving = Serving(project.models_dir, project.model_name).wait_listening()
    with frontend(serving.url, project.model_name, project.root / "config.json", tmp_path) as url:
        wait_until(lambda: requests.post(f"{url}/predict", json=ROW, timeout=5).ok, what="first prediction")
        serving.stop(signal.SIGKILL)
        down = requests.post(f"{url}/predict", json=ROW, timeout=30)
        assert down.status_code == 503
        assert "error" in down.json()
        assert requests.get(f"{url}/readyz", timeout=30).status_code == 503
        assert requests.get(f"{url}/healthz", timeout=30).status_code == 200
        restarted = Serving(project.models_dir, project.model_name, rest_port=serving.rest_port).wait_listening()
        try:
            wait_until(lambda: requests.post(f"{url}/predict", json=ROW, timeout=5).ok, seconds=60,
                       what="the frontend recovering by itself")
            assert requests.get(f"{url}/readyz", timeout=30).status_code == 200
        finally:
            restarted.stop()


def test_retrain_killed_at_random_points_then_a_clean_run(project):
    rng = random.Random(int(os.environ.get("DRILL_SEED", "7")))
    env = {**os.environ, "TF_HOST": "http://127.0.0.1:9"}  # nothing listens: verification is skipped fast
    for trial in range(10):
        proc = subprocess.Popen([sys.executable, str(REPO / "retrain_pipeline.py"), "--config",
                                 str(project.root / "config.json")], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, 8.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        before = assert_no_partial_version(project.models_dir)
        result = run.retrain(project, echo=quiet, force=True)  # the killed run may have published this data
        assert result.outcome == "promoted", f"trial {trial}: {result.message}"
        after = assert_no_partial_version(project.models_dir)
        assert after == [*before, result.version], f"trial {trial}"
    assert not [p for p in project.models_dir.iterdir() if p.name.startswith(".tmp-")]


@contextlib.contextmanager
def small_filesystem(path, size_kb: int):
    """``path`` as a tmpfs of ``size_kb`` (root only); the old content is copied in."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a small filesystem")
    saved = path.with_name(path.name + ".saved")
    shutil.move(path, saved)
    path.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)]).returncode:
        pytest.skip("mount is not permitted here")
    try:
        for item in saved.iterdir():
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, path / item.name)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


@pytest.mark.parametrize("fault", ["disk full", "read-only"])
def test_unwritable_models_dir_fails_clearly_and_serving_keeps_the_old_version(project, fault):
    with small_filesystem(project.models_dir, size_kb=1024) as models:
        if fault == "disk full":
            filler = models / ".filler"
            with contextlib.suppress(OSError), open(filler, "wb") as fh:
                while True:
                    fh.write(b"\0" * 4096)
            # leave room for the lock and counter files, not for a version
            with open(filler, "r+b") as fh:
                fh.truncate(max(0, filler.stat().st_size - 16 * 1024))
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(models)], check=True)
        serving = Serving(models, project.model_name).wait_listening()
        try:
            synthetic.simulate(project, rows=200, noise=0.0, shift=0.0, seed=5)
            result = subprocess.run([sys.executable, str(REPO / "retrain_pipeline.py"), "--config",
                                     str(project.root / "config.json")], capture_output=True, text=True, timeout=180,
                                    env={**os.environ, "TF_HOST": serving.url})
            assert result.returncode == 1, result.stdout + result.stderr
            expected = "no space left on the device" if fault == "disk full" else "not writable"
            assert expected in result.stderr, result.stderr
            assert "Traceback" not in result.stderr
            assert ModelStore(models).versions() == [1]
            answer = requests.post(f"{serving.url}/v1/models/{project.model_name}:predict", json=ROW, timeout=30)
            assert answer.status_code == 200 and 0.0 <= answer.json()["predictions"][0][0] <= 1.0
        finally:
            serving.stop()
        if fault == "disk full":
            assert_no_partial_version(models)
            assert not [p for p in models.iterdir() if p.name.startswith(".tmp-")], "the failed copy is cleaned up"
