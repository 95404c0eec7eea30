"""The trainer service takes up a changed config.json at its next tick, without a restart."""

import json
import os
from datetime import datetime, timedelta

from modelops.trainer import scheduler as service
from tests.conftest import write_config


def _replace(path, **changes):
    """Save config.json as an editor that replaces the file does (a new inode renamed over the old one)."""
    raw = json.loads(path.read_text())
    for key, value in changes.items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) and key in raw else value
    new = path.with_name("config.json.new")
    new.write_text(json.dumps(raw))
    os.replace(new, path)


def _service(tmp_path, monkeypatch, lines):
    monkeypatch.delenv("MODEL_NAME", raising=False)
    path = write_config(tmp_path)
    return path, service.Scheduler(path, echo=lines.append)


def test_a_new_cron_and_triggers_take_effect_at_the_next_tick(tmp_path, monkeypatch):
    lines = []
    path, s = _service(tmp_path, monkeypatch, lines)
    assert s.triggers is None
    _replace(path, schedule={"cron": "5 4 * * *", "triggers": {"min_new_rows": 10}})
    later = datetime.now().astimezone() + timedelta(days=1)
    assert s._wait_for_next_run(later) == service.CONFIG_CHANGED, "the wait ends, so the next run is worked out again"
    assert s.config.schedule.cron == "5 4 * * *" and s.triggers is not None
    assert any("changed (schedule)" in line and "no restart needed" in line for line in lines)
    assert not s.reload_config(), "the same text again is no change"


def test_a_new_model_name_reaches_the_serving_config_file(tmp_path, monkeypatch):
    path, s = _service(tmp_path, monkeypatch, [])
    s.write_serving_config()
    _replace(path, model_name="penguins")
    assert s.reload_config()
    assert 'name: "penguins"' in s.config.serving_config_path.read_text()
    assert s._client.model_name == "penguins"


def test_a_change_that_does_not_load_is_reported_once_and_the_old_config_kept(tmp_path, monkeypatch):
    lines = []
    path, s = _service(tmp_path, monkeypatch, lines)
    _replace(path, schedule={"cron": "not a cron"})
    assert not s.reload_config() and not s.reload_config()
    assert s.config.schedule.cron == "0 2 * * 0"
    assert sum("does not load" in line and "schedule.cron" in line for line in lines) == 1
    _replace(path, schedule={"cron": "0 3 * * 0"})
    assert s.reload_config() and s.config.schedule.cron == "0 3 * * 0", "fixing the file is taken up the same way"
