"""The trainer service: schedule, bootstrap, lock sharing with manual runs, clean SIGTERM, the
run deadline (schedule.max_run_seconds)."""

import os
import signal
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest
import requests

from harness import REPO
from harness.processes import Service, wait_until
from harness.project import write_config
from modelops.core import history
from modelops.core.config import load_config
from modelops.core.store import ModelStore
from modelops.trainer import rollout_control
from modelops.trainer.scheduler import Scheduler, next_fire
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
    models = [p.name for p in config.models_dir.iterdir()
              if p.is_dir() and (not p.name.startswith(".") or p.name.startswith(".tmp"))]
    assert models == [], "no numeric or temp version directory is left"
    [record] = history.read(config.history_path)
    assert record["event"] == "failed" and "interrupted" in record["reasons"][0]
    with ModelStore(config.models_dir).lock():  # released
        pass


def test_a_due_run_waits_for_the_rollout_in_progress(tmp_path, monkeypatch):
    from modelops.trainer import scheduler as service

    monkeypatch.setattr(service, "ROLLOUT_POLL_SECONDS", 0.01)
    s = service.Scheduler(write_config(tmp_path, rollout={"mode": "shadow"}), echo=lambda _line: None)
    due = datetime.now().astimezone() - timedelta(seconds=1)  # the run is due already
    steps = iter([True, True, True, False])  # the rollout ends at the 4th look
    looks = []
    monkeypatch.setattr(s, "rollout_tick", lambda: looks.append(1) or next(steps))
    s._wait_for_next_run(due)
    assert len(looks) == 4


@pytest.mark.parametrize(("rollouts", "steps"), [(False, False), (True, True)])
def test_only_metrics_only_never_steps_a_rollout(tmp_path, monkeypatch, rollouts, steps):
    """--metrics-only is read-only: rollout steps are not its to take; --no-retrain (Kubernetes) takes them."""
    from modelops.trainer import scheduler as service

    s = service.Scheduler(write_config(tmp_path, rollout={"mode": "shadow"}), echo=lambda _line: None,
                          retrain=False, rollouts=rollouts)
    looks = []
    monkeypatch.setattr(s, "rollout_tick", lambda: looks.append(1) or False)
    s._wait_for_next_run(datetime.now().astimezone() - timedelta(seconds=1))
    assert bool(looks) is steps


@pytest.mark.slow
def test_a_run_past_its_deadline_ends_as_failed_timed_out_and_frees_the_lock(tmp_path):
    config = load_config(write_config(tmp_path, schedule={"max_run_seconds": 1}, **UNREACHABLE))
    service = scheduler(config)
    try:
        port = metrics_port(service)
        service.wait_for("retrain finished: exit 1")
        service.wait_for("next run at")  # the service goes on
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        assert service.stop(signal.SIGTERM) == 0
    [record] = history.read(config.history_path)
    assert record["event"] == "failed" and "timed out" in record["reasons"][0]
    assert "schedule.max_run_seconds" in record["reasons"][0]
    store = ModelStore(config.models_dir)
    assert store.versions() == [] and store.lock_holder() is None
    with store.lock():  # free
        pass
    assert "modelops_trainer_consecutive_failed_runs 1.0" in text
    assert "modelops_trainer_run_started_timestamp_seconds 0.0" in text
    assert "modelops_trainer_max_run_seconds 1.0" in text


STUCK_RUN = """
import signal, sys, time
from modelops.core.store import ModelStore
for s in (signal.SIGALRM, signal.SIGTERM):
    signal.signal(s, signal.SIG_IGN)  # as good as stuck in native code
with ModelStore(sys.argv[1]).lock():
    time.sleep(600)
"""


@pytest.mark.slow
def test_a_run_stuck_past_its_deadline_is_killed_and_recorded_by_the_scheduler(tmp_path):
    config = load_config(write_config(tmp_path, schedule={"max_run_seconds": 1}))
    lines = []
    service = Scheduler(config.root / "config.json", echo=lines.append)
    service.stop_grace = 0.5
    service.retrain_command = lambda: [sys.executable, "-c", STUCK_RUN, str(config.models_dir)]
    assert service.run_once("test") == -signal.SIGKILL
    [record] = history.read(config.history_path)
    assert record["event"] == "failed" and "timed out" in record["reasons"][0] and record["run_id"]
    with ModelStore(config.models_dir).lock():  # free: the kernel released the dead run's flock
        pass
    assert any("killed by the scheduler" in line for line in lines)


KILLED_RUN = """
import os, signal, sys
from modelops.core.store import ModelStore
with ModelStore(sys.argv[1]).lock():
    os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
"""


def test_a_run_killed_from_outside_is_recorded_as_failed_by_the_scheduler(tmp_path):
    config = load_config(write_config(tmp_path))
    lines = []
    service = Scheduler(config.root / "config.json", echo=lines.append)
    service.retrain_command = lambda: [sys.executable, "-c", KILLED_RUN, str(config.models_dir)]
    assert service.run_once("test") == -signal.SIGKILL
    [record] = history.read(config.history_path)
    assert record["event"] == "failed" and "SIGKILL" in record["reasons"][0] and record["run_id"]
    assert service.run_once("again") == -signal.SIGKILL
    assert [r["event"] for r in history.read(config.history_path)] == ["failed", "failed"]  # one per run


@pytest.mark.slow
def test_stopping_the_trainer_under_honcho_leaves_no_run_holding_the_lock(tmp_path):
    """The Procfile's trainer under honcho (which kills after 5 s): SIGTERM mid-run ends the run,
    records it, and leaves the writer lock free; no retrain outlives the stack."""
    config = load_config(write_config(tmp_path, **UNREACHABLE))
    store = ModelStore(config.models_dir)
    bin_dir = os.path.dirname(sys.executable)
    honcho = Service([os.path.join(bin_dir, "honcho"), "-f", str(REPO / "Procfile"), "start", "trainer"], env={
        "MODELOPS_CONFIG": str(config.root / "config.json"), "TRAINER_METRICS_PORT": "0",
        "TF_HOST": "http://127.0.0.1:9", "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    })
    try:
        honcho.wait_for("[2/7] data")
        run_pid = wait_until(lambda: (store.lock_holder() or (None,))[0], what="the run to hold the lock")
    finally:
        assert honcho.stop(signal.SIGTERM) is not None
    assert store.lock_holder() is None
    with pytest.raises(ProcessLookupError):
        os.kill(run_pid, 0)
    with store.lock():
        pass
    [record] = history.read(config.history_path)
    assert record["event"] == "failed" and "interrupted" in record["reasons"][0]


def test_metrics_only_serves_metrics_and_never_retrains(tmp_path):
    """The Kubernetes trainer-metrics Deployment: the CronJob retrains, this only reports."""
    config = load_config(write_config(tmp_path, **UNREACHABLE))
    service = scheduler(config, extra_args=("--metrics-only",))
    try:
        port = metrics_port(service)
        service.wait_for("next run at")
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        assert service.stop(signal.SIGTERM) == 0
    assert "starting a retrain" not in service.output  # no bootstrap either, though no model exists
    assert ModelStore(config.models_dir).versions() == []
    assert "modelops_trainer_published_version 0.0" in text
    assert "modelops_trainer_next_run_timestamp_seconds" in text
    assert "modelops_trainer_run_in_progress" not in text  # runs are not this process's to see
    assert not config.serving_config_path.exists()  # read-only: it writes nothing


def test_no_retrain_writes_the_serving_config_at_start_and_never_retrains(tmp_path):
    """The Kubernetes trainer Deployment: TF Serving waits for this file before it starts."""
    config = load_config(write_config(tmp_path, **UNREACHABLE))
    service = scheduler(config, extra_args=("--no-retrain",))
    try:
        service.wait_for("next run at")
    finally:
        assert service.stop(signal.SIGTERM) == 0
    assert "starting a retrain" not in service.output
    assert ModelStore(config.models_dir).versions() == []
    assert "model_config_list" in config.serving_config_path.read_text()


def test_no_retrain_steps_a_rollout_from_the_records(tmp_path):
    """On Kubernetes nothing else steps a rollout: a candidate serving never loads is aborted by the
    Deployment at rollout.max_seconds, and the lost config file is rewritten from the records."""
    config = load_config(write_config(tmp_path, rollout={"mode": "canary", "min_seconds": 0, "max_seconds": 1},
                                      **UNREACHABLE))
    store = ModelStore(config.models_dir)
    (config.models_dir / "1").mkdir(parents=True)
    rollout_control.before_publish(config, store, 2)  # what the CronJob's retrain does
    (config.models_dir / "2").mkdir()
    config.serving_config_path.unlink()
    service = scheduler(config, extra_args=("--no-retrain",))
    try:
        service.wait_for("rollout of v2 (loading): abort")
    finally:
        assert service.stop(signal.SIGTERM) == 0
    assert [r["event"] for r in history.read(config.history_path)] == ["rollout-start", "rollout-abort"]
    assert store.versions() == [1]
    assert "versions: 1 }" in config.serving_config_path.read_text()
