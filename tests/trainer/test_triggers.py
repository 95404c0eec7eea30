"""schedule.triggers: a retrain starts early on new rows or a drifted batch, from names and sizes."""

import builtins
import json
import signal
from datetime import datetime, timedelta

import pytest

from harness.project import write_config
from modelops.core import history
from modelops.core.config import load_config
from modelops.core.schema import DEMO_SCHEMA
from modelops.core.timestamps import now_iso
from modelops.trainer import drift
from modelops.trainer.data import layout, synthetic
from modelops.trainer.triggers import Triggers
from tests.trainer.conftest import scheduler


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def fake_served_version(config):
    """v1 in models/ with the reference a real run writes (no SavedModel: triggers never load one)."""
    x, y = synthetic.synthetic(2000, seed=1)
    ref = drift.reference(DEMO_SCHEMA, drift.table(DEMO_SCHEMA, x, y), bins=10)
    synthetic.write_batch(config.data_dir / "probe.csv", x, y)
    ref["bytes_per_row"] = (config.data_dir / "probe.csv").stat().st_size / 2000
    (config.models_dir / "1").mkdir(parents=True)
    (config.models_dir / "1" / "metrics.json").write_text(json.dumps({"version": 1, "reference": ref}))
    return ref


def waiting(config, name, rows, seed, x1_shift=0.0):
    x, y = synthetic.synthetic(rows, seed=seed)
    x[:, 0] += x1_shift
    synthetic.write_batch(layout.incoming_dir(config) / name, x, y)


def triggers_on(tmp_path, **triggers):
    settings = {"min_new_rows": 0, "on_drift": False, "check_seconds": 10, "min_interval_seconds": 3600, **triggers}
    return load_config(write_config(tmp_path, schedule={"triggers": settings}))


@pytest.fixture
def opened(monkeypatch):
    """The data/incoming/ files opened by the code under test."""
    seen = []
    real = builtins.open

    def spy(file, *args, **kwargs):
        if "incoming" in str(file):
            seen.append(str(file))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    return seen


def test_triggers_are_off_by_default(project):
    assert not project.schedule.triggers.enabled
    fake_served_version(project)
    waiting(project, "big.csv", 5000, seed=2)
    assert Triggers(project).due() is None


def test_enough_new_rows_start_a_run_judged_by_file_sizes_alone(tmp_path, opened):
    config = triggers_on(tmp_path, min_new_rows=400)
    fake_served_version(config)
    clock = Clock()
    triggers = Triggers(config, clock)
    waiting(config, "a.csv", 250, seed=2)
    assert triggers.due() is None  # about 250 rows: not yet
    waiting(config, "b.csv", 150, seed=3)
    clock.now += 5
    assert triggers.due() is None, "looks only every check_seconds"
    clock.now += 5
    reason = triggers.due()
    assert reason.startswith("new_rows: about ") and "schedule.triggers.min_new_rows 400" in reason
    assert 360 <= int(reason.split("about ")[1].split()[0]) <= 440
    assert opened == [], "the check reads no data file"


def test_at_most_one_triggered_run_per_min_interval_even_across_restarts(tmp_path):
    config = triggers_on(tmp_path, min_new_rows=100, min_interval_seconds=600)
    fake_served_version(config)
    waiting(config, "a.csv", 300, seed=2)
    history.append(config.history_path, "promote", run_id="r1", version=1, trigger="new_rows: about 300 new rows")
    assert Triggers(config).due() is None  # a new service (a restart) still sees the run a moment ago
    assert Triggers(config, Clock()).due() is None
    old = json.loads(config.history_path.read_text().splitlines()[-1])
    old["time"] = "2000-01-01T00:00:00Z"
    config.history_path.write_text(json.dumps(old) + "\n")
    assert Triggers(config).due().startswith("new_rows")


def test_a_drifted_batch_starts_a_run_once_settled_and_each_batch_is_read_once(tmp_path, opened):
    config = triggers_on(tmp_path, on_drift=True, check_seconds=1)
    ref = fake_served_version(config)
    clock = Clock()
    triggers = Triggers(config, clock)
    waiting(config, "same.csv", 400, seed=2)
    assert triggers.due() is None  # first seen: it may still be growing
    clock.now += 1
    assert triggers.due() is None  # settled and judged: no drift
    waiting(config, "moved.csv", 400, seed=3, x1_shift=3 * ref["features"]["x1"]["std"])
    for _ in range(2):
        clock.now += 1
        reason = triggers.due()
    assert reason == "drift: moved.csv drifted on x1 against v1"
    for _ in range(3):
        clock.now += 1
        triggers.due()
    assert sorted(opened) == sorted(str(layout.incoming_dir(config) / n) for n in ("same.csv", "moved.csv"))


@pytest.mark.slow
def test_400_new_rows_start_a_retrain_with_the_cron_a_year_away(trained_project):
    yesterday = datetime.now() - timedelta(days=1)
    config = load_config(write_config(trained_project.root, schedule={
        "cron": f"{yesterday.minute} {yesterday.hour} {yesterday.day} {yesterday.month} *",
        "triggers": {"min_new_rows": 400, "on_drift": False, "check_seconds": 1, "min_interval_seconds": 3600}}))
    service = scheduler(config)
    try:
        service.wait_for("next run at")
        waiting(config, "fresh.csv", 400, seed=9)
        service.wait_for("trigger: new_rows: about")
        service.wait_for("retrain finished")
    finally:
        assert service.stop(signal.SIGTERM) == 0
    record = [r for r in history.read(config.history_path) if r.get("event") in ("promote", "reject")][-1]
    assert record["trigger"].startswith("new_rows: about") and record["rows_accepted"] == 400
    assert record["time"] >= now_iso()[:10]
