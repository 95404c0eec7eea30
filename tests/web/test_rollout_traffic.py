"""The frontend during a staged rollout: who answers, what is mirrored, what is measured.

The rollout state is written as the trainer writes it (history records); TF Serving is the fake
of conftest.py with two versions loaded, the candidate answering ``flip``-ped probabilities when
asked to disagree.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from prometheus_client import generate_latest

from modelops.core import history, rollout
from tests.web.conftest import FakeServing, probability

ROWS = {"instances": [[1.0, 2.0], [-3.0, -1.0]]}


class TwoVersions(FakeServing):
    """v1 champion, v2 candidate; ``v2_mode``: same answers, ``flip`` (disagree), ``error`` or ``slow``."""

    v2_mode: str = "same"
    release: threading.Event | None = None

    def handle(self, method, path, body):
        if path.endswith("/versions/2:predict") and self.v2_mode != "same":
            if self.v2_mode == "error":
                return 500, {"error": "Internal: candidate broke"}
            if self.v2_mode == "slow":
                self.release.wait(10)
            if self.v2_mode == "flip":
                rows = json.loads(body)["instances"]
                return 200, {"predictions": [[1.0 - probability(*row)] for row in rows]}
        return super().handle(method, path, body)


@pytest.fixture
def fake_serving():
    return TwoVersions(versions={1: "AVAILABLE", 2: "AVAILABLE"})


def _mode(project, **cfg):
    raw = json.loads(project.config_path.read_text())
    raw["rollout"].update(cfg)
    project.config_path.write_text(json.dumps(raw))


def _phase(project, phase):
    path = project.cfg.history_path
    if not history.read(path):
        history.append(path, "rollout-start", version=2, stable_version=1, phase="loading")
    history.append(path, "rollout-advance", version=2, stable_version=1, phase=phase)


def _metrics(registry, *names):
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if line.startswith(names)]


def _evidence(project, registry):
    """What the trainer would read from this frontend's /metrics."""
    current = rollout.state(history.read(project.cfg.history_path))
    return rollout.evidence([generate_latest(registry).decode()], current)


def _poll(check, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_direct_mode_ignores_rollout_records(project, make_app, fake_serving):
    _phase(project, "canary")
    response = make_app().test_client().post("/predict", json=ROWS)
    assert response.headers["X-Model-Version"] == "2"  # TF Serving's latest, as before


def test_shadow_users_get_stable_and_the_candidate_is_compared(project, make_app, fake_serving, registry):
    _mode(project, mode="shadow", shadow_fraction=1.0)
    _phase(project, "shadow")
    fake_serving.v2_mode = "flip"
    client = make_app().test_client()
    for _ in range(3):
        response = client.post("/predict", json=ROWS)
        assert response.status_code == 200
        assert response.headers["X-Model-Version"] == "1", "the candidate never answers a user in shadow"
        assert response.get_json()["predictions"][0][0] == pytest.approx(probability(1.0, 2.0))
    _poll(lambda: _evidence(project, registry).compared == 6)
    evidence = _evidence(project, registry)
    assert (evidence.requests, evidence.agreed, evidence.baseline_requests) == (3, 0, 3)


def test_a_failing_or_hung_candidate_never_touches_the_user_answer(project, make_app, fake_serving, registry):
    _mode(project, mode="shadow", shadow_fraction=1.0)
    _phase(project, "shadow")
    fake_serving.v2_mode, fake_serving.release = "slow", threading.Event()
    client = make_app().test_client()
    try:
        answers = [client.post("/predict", json=ROWS) for _ in range(100)]  # far more than the mirror queue holds
        assert {r.status_code for r in answers} == {200}
        assert {r.headers["X-Model-Version"] for r in answers} == {"1"}
        assert _metrics(registry, "modelops_frontend_shadow_dropped_total{")
    finally:
        fake_serving.release.set()
    fake_serving.v2_mode = "error"
    assert client.post("/predict", json=ROWS).status_code == 200
    _poll(lambda: _evidence(project, registry).errors >= 1)


def test_canary_share_is_sticky_per_client_and_says_which_version_answered(project, make_app):
    _mode(project, mode="canary", canary_percent=30.0, trusted_proxies=["127.0.0.0/8"])  # the test client's
    _phase(project, "canary")
    client = make_app().test_client()
    seen = {}
    for i in range(200):
        first = client.post("/predict", json=ROWS, headers={"X-Client-Id": f"user-{i}"})
        again = client.post("/predict", json=ROWS, headers={"X-Client-Id": f"user-{i}"})
        assert first.status_code == again.status_code == 200
        assert first.headers["X-Model-Version"] == again.headers["X-Model-Version"]
        seen[i] = first.headers["X-Model-Version"]
    share = sum(v == "2" for v in seen.values()) / len(seen)
    assert 0.15 < share < 0.45  # 30% of 200 clients, by a hash


def test_a_client_cannot_choose_the_canary_by_its_own_header_only_by_its_address(project, make_app):
    """Issue 33: X-Client-Id counts only from a listed proxy, else the connection's address decides."""
    _mode(project, mode="canary", canary_percent=30.0)
    _phase(project, "canary")
    client = make_app().test_client()
    by_header = {client.post("/predict", json=ROWS, headers={"X-Client-Id": f"user-{i}"},
                             environ_base={"REMOTE_ADDR": "198.51.100.7"}).headers["X-Model-Version"]
                 for i in range(100)}
    assert len(by_header) == 1  # one address, one version, whatever the header says
    by_address = [client.post("/predict", json=ROWS, environ_base={"REMOTE_ADDR": f"198.51.100.{i}"})
                  .headers["X-Model-Version"] for i in range(1, 201)]
    assert 0.15 < by_address.count("2") / len(by_address) < 0.45


def test_rollout_evidence_counts_rows_as_well_as_requests(project, make_app, registry):
    _mode(project, mode="canary", canary_percent=100.0)
    _phase(project, "canary")
    client = make_app().test_client()
    for size in (1, 2, 40):
        assert client.post("/predict", json={"instances": [[1.0, 2.0]] * size}).status_code == 200
    evidence = _evidence(project, registry)
    assert (evidence.requests, evidence.rows, evidence.error_rows) == (3, 43, 0)
    assert "43 rows" in rollout.describe(evidence, "canary")


def test_a_version_unloaded_mid_request_is_retried_on_the_new_state(project, make_app, fake_serving):
    _mode(project, mode="canary", canary_percent=100.0)
    _phase(project, "canary")
    client = make_app().test_client()
    assert client.post("/predict", json=ROWS).headers["X-Model-Version"] == "2"
    history.append(project.cfg.history_path, "rollout-abort", version=2, stable_version=1)
    del fake_serving.versions[2]  # aborted: TF Serving unloads the candidate
    response = client.post("/predict", json=ROWS)
    assert response.status_code == 200
    assert response.headers["X-Model-Version"] == "1"


def test_model_page_shows_the_rollout_and_its_live_comparison(project, make_app):
    _mode(project, mode="shadow", shadow_fraction=1.0)
    _phase(project, "shadow")
    client = make_app().test_client()
    client.post("/predict", json=ROWS)
    page = client.get("/", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "Rollout in progress: version 2" in page
    assert "Serving version 1" in page
    assert "candidate requests" in page


def test_after_an_abort_users_stay_on_stable_while_serving_still_lists_the_candidate(project, make_app):
    _mode(project, mode="canary", canary_percent=100.0)
    _phase(project, "canary")
    history.append(project.cfg.history_path, "rollout-abort", version=2, stable_version=1)
    response = make_app().test_client().post("/predict", json=ROWS)  # v2 is still AVAILABLE (not unloaded yet)
    assert response.headers["X-Model-Version"] == "1"
