"""Trainer metrics over HTTP, derived from the history and the store (so restarts show them)."""

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from modelops.core import history
from modelops.core.store import ModelStore
from modelops.trainer.data import layout, synthetic
from modelops.trainer.metrics import TrainerCollector, runs, serve
from modelops.trainer.retrain import run
from tests.conftest import quiet


def scrape(config, served=None) -> dict:
    server = serve(TrainerCollector(config, served_version=lambda: served), port=0)
    try:
        text = requests.get(f"http://127.0.0.1:{server.server_port}/metrics", timeout=10).text
    finally:
        server.shutdown()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.slow
def test_metrics_after_a_promoted_and_a_rejected_run(trained_project):
    config = trained_project  # v1 promoted from the bootstrap data
    synthetic.simulate(config, rows=1500, noise=0.4, shift=0.0, seed=7)
    (layout.incoming_dir(config) / "broken.csv").write_text("x1,x2,label\n1,2,maybe\n")
    assert run.retrain(config, echo=quiet).outcome == "rejected"

    m = scrape(config, served=1)
    assert m[("modelops_trainer_runs_total", (("outcome", "promoted"),))] == 1
    assert m[("modelops_trainer_runs_total", (("outcome", "rejected"),))] == 1
    assert m[("modelops_trainer_runs_total", (("outcome", "failed"),))] == 0
    assert m[("modelops_trainer_runs_total", (("outcome", "rolled_back"),))] == 0
    assert m[("modelops_trainer_rows_accepted_total", ())] == 1500
    assert m[("modelops_trainer_batches_quarantined_total", ())] == 1
    assert m[("modelops_trainer_published_version", ())] == 1
    assert m[("modelops_trainer_served_version", ())] == 1
    candidate = m[("modelops_trainer_candidate_accuracy_ratio", ())]
    champion = m[("modelops_trainer_champion_accuracy_ratio", ())]
    assert 0 < candidate < 0.97 <= champion <= 1
    last_run = m[("modelops_trainer_last_run_timestamp_seconds", ())]
    assert last_run >= m[("modelops_trainer_last_success_timestamp_seconds", ())] > 0
    assert m[("modelops_trainer_last_promotion_timestamp_seconds", ())] > 0
    assert m[("modelops_trainer_last_run_duration_seconds", ())] > 0
    assert scrape(config, served=1) == m, "a restarted service derives the same values"


def test_a_fresh_project_reports_zeros_and_no_accuracy(project):
    m = scrape(project)
    assert m[("modelops_trainer_runs_total", (("outcome", "promoted"),))] == 0
    assert m[("modelops_trainer_published_version", ())] == 0
    assert m[("modelops_trainer_served_version", ())] == 0
    assert m[("modelops_trainer_last_success_timestamp_seconds", ())] == 0
    assert not [k for k in m if "accuracy" in k[0]]


def test_a_damaged_history_still_scrapes_and_counts_the_damaged_lines(project):
    history.append(project.history_path, "reject", run_id="a", version=1, accuracy_percent=90.0, reasons=["low"])
    with open(project.history_path, "ab") as fh:
        fh.write(b'{"event": "promote", "run_id": "b\xff"}\n{"event": "promote", "run_id": "c", "ver')  # torn
    m = scrape(project)
    assert m[("modelops_trainer_runs_total", (("outcome", "rejected"),))] == 1
    assert m[("modelops_trainer_runs_total", (("outcome", "promoted"),))] == 0
    assert m[("modelops_trainer_history_damaged_lines", ())] == 2


def test_failed_runs_in_a_row_and_the_run_holding_the_lock(project):
    for event, run_id in [("promote", "a"), ("failed", "b"), ("reject", "c"), ("failed", "d"), ("failed", "e")]:
        history.append(project.history_path, event, run_id=run_id)
    assert scrape(project)[("modelops_trainer_consecutive_failed_runs", ())] == 2
    before = time.time()
    with ModelStore(project.models_dir).lock():
        during = scrape(project)
    assert before - 1 <= during[("modelops_trainer_run_started_timestamp_seconds", ())] <= time.time()
    assert during[("modelops_trainer_max_run_seconds", ())] == project.schedule.max_run_seconds
    assert scrape(project)[("modelops_trainer_run_started_timestamp_seconds", ())] == 0


def test_metrics_listen_on_localhost_unless_bind_address_says_otherwise(project, monkeypatch):
    monkeypatch.delenv("BIND_ADDRESS", raising=False)
    server = serve(TrainerCollector(project), port=0)
    server.shutdown()
    assert server.server_address[0] == "127.0.0.1"
    monkeypatch.setenv("BIND_ADDRESS", "0.0.0.0")  # what the trainer image sets
    server = serve(TrainerCollector(project), port=0)
    server.shutdown()
    assert server.server_address[0] == "0.0.0.0"


def test_runs_are_grouped_by_run_id_and_rollbacks_win():
    records = [
        {"time": "2026-01-04T02:00:09Z", "event": "promote", "run_id": "a", "elapsed_seconds": 9, "rows_accepted": 5},
        {"time": "2026-01-04T02:00:10Z", "event": "verified", "run_id": "a", "elapsed_seconds": 10},
        {"time": "2026-01-05T09:00:00Z", "event": "rollback", "version": 1},  # manual: not a run
        {"time": "2026-01-11T02:00:08Z", "event": "promote", "run_id": "b", "elapsed_seconds": 8},
        {"time": "2026-01-11T02:00:30Z", "event": "verify-failed", "run_id": "b", "elapsed_seconds": 30},
        {"time": "2026-01-11T02:00:30Z", "event": "rollback", "run_id": "b", "elapsed_seconds": 30},
        {"time": "2026-01-18T02:00:01Z", "event": "failed", "run_id": "c", "elapsed_seconds": 1},
        {"time": "2026-01-18T02:00:01Z", "event": "failed", "run_id": "c", "elapsed_seconds": 0.5},  # same second
    ]
    summary = runs(records)
    assert [s["outcome"] for s in summary] == ["promoted", "rolled_back", "failed", "failed"]
    assert summary[0]["last"]["elapsed_seconds"] == 10
    assert summary[1]["last"]["event"] == "rollback"
