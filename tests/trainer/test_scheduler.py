"""The trainer service: schedule, bootstrap, lock sharing with manual runs, clean SIGTERM."""

import signal
from datetime import UTC, datetime, timedelta, timezone

import pytest
import requests

from modelops import history
from modelops.config import load_config
from modelops.scheduler import next_fire
from modelops.store import ModelStore
from tests.conftest import write_config
from tests.trainer.conftest import metrics_port, scheduler

UNREACHABLE = {"verify": {"timeout_seconds": 1.0}}


def test_next_fire_time_follows_the_cron_expression():
    sunday_2am = next_fire("0 2 * * 0", datetime(2026, 3, 4, 12, 0, tzinfo=UTC))  # a Wednesday
    assert sunday_2am == datetime(2026, 3, 8, 2, 0, tzinfo=UTC)
    assert next_fire("0 2 * * 0", sunday_2am) == sunday_2am + timedelta(days=7)
    local = datetime(2026, 3, 4, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert next_fire("30 13 * * *", local) == datetime(2026, 3, 4, 13, 30, tzinfo=local.tzinfo)


@pytest.mark.slow
def test_bootstrap_on_start_publishes_a_first_model_and_serves_metrics(tmp_path):
    config = load_config(write_config(tmp_path, **UNREACHABLE))
    service = scheduler(config)
    try:
        port = metrics_port(service)
        service.wait_for("retrain finished: exit 0 (promoted)")
        service.wait_for("next run at")
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        assert service.stop(signal.SIGTERM) == 0
    assert ModelStore(config.models_dir).versions() == [1]
    assert 'modelops_trainer_runs_total{outcome="promoted"} 1.0' in text
    assert "modelops_trainer_published_version 1.0" in text
    assert "modelops_trainer_served_version 0.0" in text  # serving is not running here
    assert "scheduler: stopped" in service.output


@pytest.mark.slow
def test_no_bootstrap_run_when_a_model_exists(trained_project):
    service = scheduler(trained_project)
    try:
        service.wait_for("next run at")
    finally:
        assert service.stop(signal.SIGINT) == 0
    assert "starting a retrain" not in service.output
    assert len(history.read(trained_project.history_path)) == 1


@pytest.mark.slow
def test_a_scheduled_run_waits_for_a_manual_run_holding_the_lock(tmp_path):
    config = load_config(write_config(tmp_path, **UNREACHABLE))
    store = ModelStore(config.models_dir)
    service = scheduler(config)
    try:
        with store.lock():  # a manual retrain in progress
            service.wait_for("waiting up to 86400s for the writer lock")
            assert store.versions() == []
        service.wait_for("retrain finished: exit 0 (promoted)")
    finally:
        assert service.stop(signal.SIGTERM) == 0
    assert store.versions() == [1]


@pytest.mark.slow
def test_sigterm_mid_run_leaves_no_partial_version_and_exits_0(tmp_path):
    config = load_config(write_config(tmp_path, **UNREACHABLE))
    service = scheduler(config)
    service.wait_for("[2/7] data")  # training starts right after this line
    assert service.stop(signal.SIGTERM) == 0
    assert "aborting the current run" in service.output
    models = [p.name for p in config.models_dir.iterdir() if not p.name.startswith(".") or p.name.startswith(".tmp")]
    assert models == [], "no numeric or temp version directory is left"
    [record] = history.read(config.history_path)
    assert record["event"] == "failed" and "interrupted" in record["reasons"][0]
    with ModelStore(config.models_dir).lock():  # released
        pass


def test_a_due_run_waits_for_the_rollout_in_progress(tmp_path, monkeypatch):
    from modelops import scheduler as service

    monkeypatch.setattr(service, "ROLLOUT_POLL_SECONDS", 0.01)
    s = service.Scheduler(write_config(tmp_path, rollout={"mode": "shadow"}), echo=lambda _line: None)
    s.next_at = datetime.now().astimezone() - timedelta(seconds=1)  # the run is due already
    steps = iter([True, True, True, False])  # the rollout ends at the 4th look
    looks = []
    monkeypatch.setattr(s, "rollout_tick", lambda: looks.append(1) or next(steps))
    s._wait_for_next_run()
    assert len(looks) == 4
