"""Staged rollout end to end, local mode: serving from the trainer's model config file, the
frontend under gunicorn, the trainer service deciding, and a client predicting in a loop.

- A good candidate goes loading -> shadow -> canary -> stable with zero failed requests, and a
  trainer restarted in the middle resumes the rollout from the records.
- A candidate trained on shifted data passes a lenient gate on held-out rows but answers the
  live traffic differently: the shadow evidence aborts it; serving restarted in the middle
  loads both versions again from the config file and the rollout resumes.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from harness.processes import Service, Serving, frontend, wait_until
from harness.servers import free_port
from modelops.core import history
from modelops.core.config import load_config
from modelops.core.store import ModelStore
from modelops.core.timestamps import now_iso
from modelops.trainer.rollout_control import sync
from tests.conftest import run_cli

MODEL = "simple_classifier"

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ROLLOUT = {"mode": "canary", "shadow_fraction": 1.0, "canary_percent": 50.0, "min_requests": 30, "min_seconds": 8,
           "max_seconds": 600, "min_agreement": 0.95, "max_error_rate_increase": 0.05,
           "max_p99_latency_ratio": 1000.0,
           # the loop's clients come through one address, as behind a proxy that names them (X-Client-Id)
           "trusted_proxies": ["127.0.0.0/8"]}
FAR_FROM_THE_BOUNDARY = [[3.0, 2.5], [-2.0, -1.5]]  # x1 + x2 vs 1: every sane model agrees
IN_THE_SHIFTED_BAND = [[1.0, 1.0], [0.9, 1.2]]  # x1 + x2 = 2: above the old boundary, below a shifted one


class PredictLoop(threading.Thread):
    """Many clients (X-Client-Id) predicting in a loop; records failures and who answered."""

    def __init__(self, url: str, rows: list):
        super().__init__(daemon=True)
        self.url, self.rows = url, rows
        self.stop, self.failures, self.versions = threading.Event(), [], []

    def run(self):
        clients = itertools.cycle(range(40))
        with requests.Session() as session:
            while not self.stop.is_set():
                try:
                    r = session.post(self.url, json={"instances": self.rows}, timeout=10,
                                     headers={"X-Client-Id": f"client-{next(clients)}"})
                    if r.status_code == 200 and len(r.json()["predictions"]) == len(self.rows):
                        self.versions.append(int(r.headers["X-Model-Version"]))
                    else:
                        self.failures.append(f"{r.status_code} {r.text[:200]}")
                except (requests.RequestException, ValueError, KeyError) as exc:
                    self.failures.append(repr(exc))
                time.sleep(0.01)


class Stack:
    """Serving (from the config file), the frontend and the trainer service on one project."""

    def __init__(self, config, workdir: Path):
        self.config, self.workdir = config, workdir
        self.rest_port = free_port()
        self.serving = self.trainer = None

    def start_serving(self) -> None:
        self.serving = Serving(self.config.models_dir, MODEL, f"--model_config_file={self.config.serving_config_path}",
                               "--model_config_file_poll_wait_seconds=1", rest_port=self.rest_port)
        self.serving.wait_listening()

    def start_trainer(self, frontend_url: str) -> None:
        self.trainer = Service([sys.executable, "-m", "modelops.trainer.scheduler", "--config", str(self.config_path)],
                               env={"TRAINER_METRICS_PORT": "0", "TF_HOST": self.tf_host,
                                    "FRONTEND_METRICS_URL": f"{frontend_url}/metrics"})
        self.trainer.wait_for("metrics on :")

    @property
    def tf_host(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def config_path(self) -> Path:
        return self.config.root / "config.json"

    def retrain(self) -> None:
        result = run_cli("--config", str(self.config_path), timeout=300, env={**os.environ, "TF_HOST": self.tf_host})
        assert result.returncode == 0, result.stdout + result.stderr

    def simulate(self, *args: str) -> None:
        result = run_cli("--config", str(self.config_path), "simulate", *args, timeout=120)
        assert result.returncode == 0, result.stderr

    def events(self) -> list[tuple[str, str | None]]:
        return [(r["event"], r.get("phase")) for r in history.read(self.config.history_path)
                if r["event"].startswith("rollout-")]

    def wait_event(self, event: str, phase: str | None = None, seconds: float = 240) -> dict:
        wait_until(lambda: (event, phase) in self.events(), seconds=seconds, what=f"{event} {phase or ''}",
                   interval=0.5)
        return next(r for r in history.read(self.config.history_path) if r["event"] == event)

    def available(self) -> set[int]:
        status = requests.get(f"{self.tf_host}/v1/models/{MODEL}", timeout=5).json()
        return {int(e["version"]) for e in status["model_version_status"] if e["state"] == "AVAILABLE"}

    @contextlib.contextmanager
    def predicting(self, rows: list):
        """The frontend and the trainer service up, a client loop predicting ``rows``; yields (url, loop)."""
        with frontend(self.tf_host, MODEL, self.config_path, self.workdir, workers=1) as url:
            self.start_trainer(url)
            loop = PredictLoop(f"{url}/predict", rows)
            loop.start()
            try:
                yield url, loop
            finally:
                loop.stop.set()
                loop.join(30)

    def stop(self) -> None:
        for service in (self.trainer, self.serving):
            if service is not None:
                service.stop()


@pytest.fixture
def stack(trained_project, tmp_path):
    raw = json.loads((trained_project.root / "config.json").read_text())
    raw["rollout"].update(ROLLOUT)
    raw["gate"].update(min_accuracy_percent=50.0, max_regression_percent=100.0)  # lenient: live traffic decides
    raw["schedule"].update(cron="0 0 1 1 *", bootstrap_on_start=False)  # retrains only by hand here
    (trained_project.root / "config.json").write_text(json.dumps(raw))
    config = load_config(trained_project.root / "config.json")
    sync(config, ModelStore(config.models_dir))  # what the stack does before starting serving
    s = Stack(config, tmp_path)
    s.start_serving()
    yield s
    s.stop()


def test_a_good_candidate_earns_stable_with_no_failed_request_and_survives_a_trainer_restart(stack):
    with stack.predicting(FAR_FROM_THE_BOUNDARY) as (url, loop):
        stack.simulate("--rows", "500", "--seed", "7")
        stack.retrain()
        stack.wait_event("rollout-advance", "shadow")
        stack.trainer.stop()  # the trainer goes away mid-rollout; a new one resumes from the records
        stack.start_trainer(url)
        stack.wait_event("rollout-advance", "canary")
        promoted = stack.wait_event("rollout-promote")
        wait_until(lambda: stack.available() == {2}, what="v1 unloaded, v2 alone served")
        time.sleep(2)  # keep predicting through the unload
        page = requests.get(f"{url}/", headers={"Accept": "text/html"}, timeout=10).text
    assert loop.failures == [], loop.failures[:5]
    assert 1 in loop.versions and 2 in loop.versions
    assert loop.versions[-1] == 2
    assert stack.events() == [("rollout-start", "loading"), ("rollout-advance", "shadow"),
                              ("rollout-advance", "canary"), ("rollout-promote", None)]
    assert promoted["version"] == 2 and promoted["stable_version"] == 1
    assert "Rollout promoted" in page and "Serving version 2" in page
    assert "ROLLOUT-PROMOTE" in stack.config.notifications_path.read_text()


def test_a_candidate_that_answers_live_traffic_differently_is_aborted_across_a_serving_restart(stack):
    with stack.predicting(IN_THE_SHIFTED_BAND) as (_url, loop):
        stack.simulate("--rows", "20000", "--shift", "2.0", "--seed", "11")
        stack.retrain()
        shadow = stack.wait_event("rollout-advance", "shadow")
        stack.serving.stop()  # serving restarts mid-rollout: both versions come back from the config file
        restarted = now_iso()
        stack.start_serving()
        aborted = stack.wait_event("rollout-abort")
        wait_until(lambda: stack.available() == {1}, what="the candidate unloaded")
        seen = len(loop.versions)
        wait_until(lambda: len(loop.versions) > seen + 20, what="more answers after the abort")
    assert any("rollout.min_agreement" in reason for reason in aborted["reasons"]), aborted["reasons"]
    assert shadow["time"] <= restarted <= aborted["time"], "decided after serving came back, not before"
    assert set(loop.versions) == {1}, "the candidate never answered a user"
    assert ModelStore(stack.config.models_dir).retired() == [2]
    assert ("rollout-advance", "canary") not in stack.events()
