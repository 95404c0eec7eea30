"""Live drift at the frontend: /predict rows counted into the serving version's reference, /drift,
/metrics and the model page; a window shared by workers, bounded, reset by a new version."""

import multiprocessing
import random

import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelops.core.schema import DEMO_SCHEMA
from modelops.trainer import drift
from modelops.trainer.data import synthetic
from modelops.web.drift import LiveWindow, sparkline


def reference() -> dict:
    x, y = synthetic.synthetic(4000, seed=1)
    return drift.reference(DEMO_SCHEMA, drift.table(DEMO_SCHEMA, x, y), bins=10)


REFERENCE = reference()
STD = REFERENCE["features"]["x1"]["std"]


def send(client, rows: int, x1_shift: float = 0.0, seed: int = 3) -> None:
    rng = random.Random(seed)
    for _ in range(rows):
        row = [round(rng.gauss(0.5, 1.5) + x1_shift, 4), round(rng.gauss(0.5, 1.5), 4)]
        assert client.post("/predict", json={"instances": [row]}).status_code == 200


def live_metrics(client) -> dict:
    text = client.get("/metrics").get_data(as_text=True)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name.startswith("modelops_frontend_live_drift")}


@pytest.fixture
def served(project):
    project.add_version(1, 99.0, reference=REFERENCE)
    return project


def test_400_requests_with_x1_moved_show_at_drift_metrics_and_the_page(served, client):
    send(client, 400, x1_shift=3 * STD)
    report = client.get("/drift").get_json()
    assert report["model_version"] == 1 and report["requests"] == 400
    assert report["features"]["x1"]["drifted"] is True and report["features"]["x1"]["score"] > 1.0
    assert report["features"]["x2"]["drifted"] is False
    m = live_metrics(client)
    assert m[("modelops_frontend_live_drifted", (("feature", "x1"),))] == 1.0
    assert m[("modelops_frontend_live_drifted", (("feature", "x2"),))] == 0.0
    assert m[("modelops_frontend_live_drift_score", (("feature", "x1"),))] == report["features"]["x1"]["score"]
    assert m[("modelops_frontend_live_drift_rows", ())] == 400
    assert {labels for (_, labels) in m if labels} == {(("feature", "x1"),), (("feature", "x2"),)}
    page = client.get("/").get_data(as_text=True)
    card = page.split('id="drift"')[1].split("</section>")[0]
    x1_row = card.split("<th scope=\"row\">x1</th>")[1].split("</tr>")[0]
    assert "drifted" in x1_row and "drifted" not in card.split("<th scope=\"row\">x2</th>")[1].split("</tr>")[0]
    assert "the last 400 of up to 1000 rows" in " ".join(card.split())


def test_unmoved_requests_do_not_drift_and_too_few_are_never_flagged(served, client):
    send(client, 150, x1_shift=3 * STD)
    few = client.get("/drift").get_json()
    assert few["features"]["x1"]["score"] > 1.0 and few["features"]["x1"]["drifted"] is False  # < drift.min_rows
    send(client, 1000, seed=4)  # the window holds the last 1000 rows: the moved ones have left it
    report = client.get("/drift").get_json()
    assert report["requests"] == 1000
    assert not any(f["drifted"] for f in report["features"].values())


def test_a_new_version_resets_the_window_to_its_reference(served, app, client, fake_serving):
    send(client, 300, x1_shift=3 * STD)
    served.add_version(2, 99.0, reference=REFERENCE)
    fake_serving.versions = {1: "AVAILABLE", 2: "AVAILABLE"}
    app.extensions["serving"]._cached = None  # the version cache's TTL has passed
    send(client, 5)
    report = client.get("/drift").get_json()
    assert (report["model_version"], report["requests"]) == (2, 5)


def test_a_version_without_reference_counts_nothing_and_drift_still_answers(project, app, client, fake_serving):
    project.add_version(1, 99.0, reference=REFERENCE)
    send(client, 3)
    project.add_version(2, 99.0)  # trained before drift existed (a rollback to an old version, say)
    fake_serving.versions = {1: "AVAILABLE", 2: "AVAILABLE"}
    app.extensions["serving"]._cached = None
    send(client, 3)
    assert client.get("/drift").get_json() == {"model_version": 2, "requests": 0, "features": {}}
    assert client.get("/").status_code == 200


def test_the_page_shows_batch_drift_from_the_runs_with_a_chart(served, client):
    for version, score in ((2, 0.05), (3, 2.5)):
        served.record("reject", version, 90.0, drift_reference_version=1,
                      drift={"x1": {"score": score, "drifted": score > 0.2}, "x2": {"score": 0.01, "drifted": False}})
    card = client.get("/").get_data(as_text=True).split('id="drift"')[1].split("</section>")[0]
    x1_row = card.split("<th scope=\"row\">x1</th>")[1].split("</tr>")[0]
    assert "2.500 drifted" in x1_row and 'class="spark"' in x1_row and x1_row.count("<circle") == 2
    assert "against version" in card


def test_the_sparkline_marks_scores_over_the_threshold():
    svg = sparkline([0.01, 0.5, 0.1], 0.2)
    assert svg.count("<circle") == 3 and svg.count('class="over"') == 1
    assert sparkline([], 0.2) == ""


def _observe_in_a_worker(path, rows, seed):
    window = LiveWindow(("x1", "x2"), 1000, path)
    window._references[1] = REFERENCE["features"]
    rng = random.Random(seed)
    for _ in range(rows):
        window.observe(1, [[rng.gauss(0.5, 1.5), rng.gauss(0.5, 1.5)]])


def test_workers_share_one_window_and_a_restarted_worker_keeps_it(tmp_path):
    path = tmp_path / "live-drift.bin"
    fork = multiprocessing.get_context("fork")
    workers = [fork.Process(target=_observe_in_a_worker, args=(path, 150, seed)) for seed in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    again = LiveWindow(("x1", "x2"), 1000, path)  # a worker started later, or after another one died
    again._references[1] = REFERENCE["features"]
    report = again.report(threshold=0.2, min_rows=200)
    assert report["requests"] == 600, "no row lost or counted twice between processes"
    assert not any(f["drifted"] for f in report["features"].values())
    assert path.stat().st_size == 16 + 1000 * 2 * 2, "bounded: window x features x 2 bytes"


@pytest.mark.slow
def test_the_bench_measures_predict_with_and_without_live_drift_side_by_side(tmp_path):
    import json
    import subprocess
    import sys

    from harness import REPO

    out = tmp_path / "drift.json"
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "bench.py"), "--live-drift", "--quick",
                             "--rounds", "1", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    bench = json.loads(out.read_text())
    assert set(bench["median_p50_ms"]) == {"with", "without"} and all(v > 0 for v in bench["median_p50_ms"].values())
    assert bench["added_p50_ms"] == pytest.approx(bench["median_p50_ms"]["with"] - bench["median_p50_ms"]["without"])


@pytest.mark.slow
def test_under_gunicorn_every_worker_counts_into_one_window(fake_upstream, served, tmp_path):
    import requests

    from harness.processes import frontend
    from tests.web.conftest import MODEL

    rng = random.Random(5)
    with frontend(fake_upstream, MODEL, served.config_path, tmp_path, workers=2) as url:
        for _ in range(400):  # a new connection per request (like curl): the requests spread over both workers
            row = [round(rng.gauss(0.5, 1.5) + 3 * STD, 4), round(rng.gauss(0.5, 1.5), 4)]
            assert requests.post(f"{url}/predict", json={"instances": [row]}, timeout=10).ok
        report = requests.get(f"{url}/drift", timeout=10).json()
        metrics = requests.get(f"{url}/metrics", timeout=10).text
        page = requests.get(f"{url}/", timeout=10).text
    assert (report["model_version"], report["requests"]) == (1, 400)
    assert report["features"]["x1"]["drifted"] and not report["features"]["x2"]["drifted"]
    assert 'modelops_frontend_live_drifted{feature="x1"} 1.0' in metrics
    assert "the last 400 of up to 1000 rows" in " ".join(page.split())
