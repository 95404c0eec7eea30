"""Notifications: the log line always, the webhook when configured, never a failed run."""

import pytest

from harness.servers import webhook_receiver
from modelops.core import history
from modelops.core.notify import WEBHOOK_ENV, notify
from tests.trainer.conftest import dead_url


@pytest.fixture
def webhook():
    """A local webhook recording JSON POSTs; answers with ``status[0]`` (200 by default)."""
    with webhook_receiver() as (base, received, status):
        yield f"{base}/hooks/SECRET", received, status


def test_webhook_gets_slack_text_and_the_structured_record(tmp_path, monkeypatch, webhook):
    url, received, _ = webhook
    monkeypatch.setenv(WEBHOOK_ENV, url)
    log = tmp_path / "notifications.log"
    record = history.append(tmp_path / "history.jsonl", "reject", version=4, accuracy_percent=88.5, reasons=["low"])
    line = notify(log, "rejected", "simple_classifier v4 88.50%: low", record)
    [payload] = received
    assert payload["text"] == line and "REJECTED" in payload["text"]
    assert payload["event"] == "rejected"
    assert payload["record"] == record
    assert log.read_text().splitlines() == [line]


def test_dead_webhook_is_logged_and_does_not_raise(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(WEBHOOK_ENV, dead_url() + "/hooks/SECRET")
    log = tmp_path / "notifications.log"
    notify(log, "promoted", "simple_classifier v2 99.00%")
    lines = log.read_text().splitlines()
    assert "PROMOTED" in lines[0]
    assert "WEBHOOK-FAILED" in lines[1] and "not delivered" in lines[1]
    assert "not delivered" in capsys.readouterr().err
    assert "SECRET" not in log.read_text(), "the webhook path may hold a secret"


def test_webhook_error_status_is_logged(tmp_path, monkeypatch, webhook):
    url, received, status = webhook
    status[0] = 500
    monkeypatch.setenv(WEBHOOK_ENV, url)
    log = tmp_path / "notifications.log"
    notify(log, "failed", "simple_classifier retrain: boom")
    assert len(received) == 1
    assert "HTTP 500" in log.read_text().splitlines()[-1]


def test_an_unwritable_log_does_not_raise_and_the_webhook_still_gets_the_line(tmp_path, monkeypatch, webhook, capsys):
    url, received, _ = webhook
    monkeypatch.setenv(WEBHOOK_ENV, url)
    log = tmp_path / "notifications.log"
    log.mkdir()  # not a file: every append fails (permissions would not stop root)
    line = notify(log, "promoted", "simple_classifier v2 99.00%")
    assert [p["text"] for p in received] == [line]
    err = capsys.readouterr().err
    assert "could not write to" in err and line in err
