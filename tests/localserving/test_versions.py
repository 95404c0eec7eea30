"""The model directory changes underneath a running server: swap, rollback, half-written versions, metrics.

Each test leaves the directory serving what it found, so they share one server (and also run
against a real TF Serving given TF_SERVING_MODEL_DIR).
"""

from __future__ import annotations

import re
import shutil
import threading
import time

import pytest
import requests

from harness.processes import Serving
from tests.localserving.conftest import MODEL, REMOTE_URL, ROWS, Target, close, local_only, remote_target
from tests.localserving.saved_models import write_unrunnable_warmup

pytestmark = [pytest.mark.slow, pytest.mark.contract]

METRICS_PATH = "/monitoring/prometheus/metrics"


@pytest.fixture(scope="module")
def store(models, tmp_path_factory):
    """A target whose model dir the tests change; locally: model A as version 1, metrics enabled."""
    if REMOTE_URL:
        target = remote_target()
        if target.model_dir is None:
            pytest.skip("changes the model dir: set TF_SERVING_MODEL_DIR")
        yield target
        return
    root = tmp_path_factory.mktemp("store")
    base = root / "models"
    base.mkdir()
    models.publish("a", base, 1)
    config = root / "monitoring.config"
    config.write_text(f'prometheus_config {{\n  enable: true,\n  path: "{METRICS_PATH}"\n}}\n')
    server = Serving(base, MODEL, "--monitoring_config_file", str(config), "--max_num_load_retries", "0")
    try:
        server.wait_listening()
        yield Target(f"http://127.0.0.1:{server.rest_port}", server.model_name, None, base)
    finally:
        server.stop()


def next_version(target: Target) -> int:
    """A version number never seen: TF Serving never retries a number that failed."""
    on_disk = [int(p.name) for p in target.model_dir.iterdir() if p.name.isdigit()]
    return max([*on_disk, *target.statuses()]) + 1


def other_model(target: Target, models) -> str:
    """Model A or B, whichever answers differently from the version served now."""
    return "b" if close(target.predict(), models.expected(models.paths["a"])) else "a"


class Load:
    """Clients looping on ``:predict`` over kept-alive connections; every answer and failure recorded."""

    def __init__(self, target: Target, clients: int = 2):
        self._target = target
        self._stop = threading.Event()
        self.answers: list[list] = []
        self.failures: list[str] = []
        self._threads = [threading.Thread(target=self._loop) for _ in range(clients)]

    def _loop(self) -> None:
        url = f"{self._target.url}/v1/models/{self._target.model}:predict"
        with requests.Session() as session:
            while not self._stop.is_set():
                try:
                    response = session.post(url, json={"instances": ROWS}, timeout=30)
                    if response.status_code != 200:
                        self.failures.append(f"{response.status_code} {response.text}")
                    else:
                        self.answers.append(response.json()["predictions"])
                except requests.RequestException as e:
                    self.failures.append(repr(e))

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)


def test_new_version_swaps_in_under_load_without_a_failed_request(store, models):
    old_version, old_answers = store.latest(), store.predict()
    name = other_model(store, models)
    new_answers = models.expected(models.paths[name])
    version = next_version(store)
    with Load(store) as load:
        staging = models.stage(name, store.model_dir, version)
        time.sleep(2.5)  # two polls: a non-numeric directory is not a version
        assert version not in store.statuses() and close(store.predict(), old_answers)
        staging.rename(store.model_dir / str(version))
        store.wait_for(lambda t: close(t.predict(), new_answers), what=f"version {version} answering")
        statuses = store.wait_for(
            lambda t: t.statuses()[old_version]["state"] == "END" and t.statuses(),
            what=f"version {old_version} unloaded",
        )
        time.sleep(0.3)
    assert load.failures == []
    assert len(load.answers) > 10
    assert all(close(a, old_answers) or close(a, new_answers) for a in load.answers)
    assert statuses[version] == {
        "version": str(version),
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
    }
    assert statuses[old_version]["status"] == {"error_code": "OK", "error_message": ""}
    listed = [int(s["version"]) for s in store.get(f"/v1/models/{store.model}").json()["model_version_status"]]
    assert listed == sorted(listed, reverse=True)
    shutil.rmtree(store.model_dir / str(version))  # leave it as found (this rolls back)
    store.wait_for(lambda t: t.latest() == old_version, what="rollback")


def test_deleting_the_top_version_rolls_back_to_the_next(store, models):
    old_version, old_answers = store.latest(), store.predict()
    name = other_model(store, models)
    version = next_version(store)
    models.publish(name, store.model_dir, version)
    store.wait_for(lambda t: t.latest() == version, what=f"version {version} AVAILABLE")
    with Load(store) as load:
        shutil.rmtree(store.model_dir / str(version))
        store.wait_for(lambda t: close(t.predict(), old_answers), what=f"rollback to {old_version}")
        statuses = store.wait_for(
            lambda t: t.statuses()[version]["state"] == "END" and t.statuses(), what=f"version {version} unloaded"
        )
    assert load.failures == []
    assert statuses[old_version]["state"] == "AVAILABLE"
    assert store.latest() == old_version


@pytest.mark.parametrize("missing", ["variables", "saved_model.pb"])
def test_half_written_version_ends_with_an_error_and_the_old_one_keeps_serving(store, models, missing):
    old_version, old_answers = store.latest(), store.predict()
    version = next_version(store)
    staging = models.stage(other_model(store, models), store.model_dir, version)
    removed = staging / missing
    shutil.rmtree(removed) if removed.is_dir() else removed.unlink()
    broken = staging.rename(store.model_dir / str(version))
    try:
        status = failed(store, version)
        assert status["status"]["error_code"] != "OK"
        assert status["status"]["error_message"]
        if missing == "saved_model.pb" and not REMOTE_URL:
            assert status["status"]["error_code"] == "NOT_FOUND"
        assert store.latest() == old_version
        assert close(store.predict(), old_answers)
        time.sleep(1.5)  # and it is not retried into a broken state
        assert store.statuses()[version]["state"] == "END" and close(store.predict(), old_answers)
    finally:
        shutil.rmtree(broken)


def test_a_version_whose_warmup_records_fail_never_becomes_available(store, models):
    """Warmup runs before AVAILABLE: a record the graph refuses fails the load, the old version serves."""
    old_version, old_answers = store.latest(), store.predict()
    version = next_version(store)
    staging = models.stage(other_model(store, models), store.model_dir, version)
    write_unrunnable_warmup(staging)
    broken = staging.rename(store.model_dir / str(version))
    try:
        status = failed(store, version)
        assert status["status"]["error_code"] != "OK"
        assert store.latest() == old_version and close(store.predict(), old_answers)
    finally:
        shutil.rmtree(broken)


def failed(target: Target, version: int) -> dict:
    """The status entry of ``version`` once it has ended (END), failed to load."""
    return target.wait_for(
        lambda t: t.statuses().get(version, {}).get("state") == "END" and t.statuses()[version],
        what=f"version {version} failing",
    )


_SAMPLE = re.compile(r"^(?P<name>[^{\s]+)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(target: Target) -> tuple[str, dict[tuple[str, frozenset], float]]:
    response = target.get(METRICS_PATH)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            match = _SAMPLE.match(line)
            assert match, line
            samples[(match["name"], frozenset(_LABEL.findall(match["labels"] or "")))] = float(match["value"])
    return response.text, samples


@local_only
def test_prometheus_metrics_use_tf_serving_names_when_enabled(store):
    m = store.model
    _, before = scrape(store)
    for _ in range(3):
        store.predict()
    store.get(f"/v1/models/{m}")
    assert store.post(f"/v1/models/{m}:predict", {"instances": [["bad"]]}).status_code == 400
    scanned = [f"probe-{i}" for i in range(3)]
    for name in scanned:
        assert store.post(f"/v1/models/{name}:predict", {"instances": [[1.0, 2.0]]}).status_code == 404
    text, after = scrape(store)

    def delta(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert "# HELP" not in text
    assert "# TYPE :tensorflow:serving:request_count counter" in text
    assert "# TYPE :tensorflow:serving:request_latency histogram" in text
    assert "# TYPE :tensorflow:cc:saved_model:load_attempt_count counter" in text
    assert delta(":tensorflow:serving:request_count", model_name=m, status="OK") == 4
    assert delta(":tensorflow:serving:request_count", model_name=m, status="INVALID_ARGUMENT") == 1
    # names the server does not serve share one series: a scanner cannot add a series per name
    assert delta(":tensorflow:serving:request_count", model_name="unknown", status="NOT_FOUND") == 3
    assert not [name for name in scanned if name in text]
    latency = {"model_name": m, "API": "predict", "entrypoint": "REST"}
    assert delta(":tensorflow:serving:request_latency_count", **latency) == 3
    assert delta(":tensorflow:serving:request_latency_bucket", **latency, le="+Inf") == 3
    assert delta(":tensorflow:serving:request_latency_sum", **latency) > 0  # microseconds
    assert delta(":tensorflow:serving:request_latency_count", model_name=m, API="", entrypoint="REST") == 1
    loads = {
        dict(labels)["status"] for name, labels in after if name == ":tensorflow:cc:saved_model:load_attempt_count"
    }
    assert "success" in loads
