"""Issue 33, finding 3: file names and file content are data, never markup, lines or a way out."""

import os
import re

from harness.servers import webhook_receiver
from modelops.core.notify import WEBHOOK_ENV
from modelops.core.store import ModelStore
from modelops.core.untrusted import quoted
from modelops.trainer.data import inbox, layout
from modelops.trainer.retrain import run
from modelops.trainer.retrain.runlog import RunLog
from tests.conftest import quiet

GOOD = b"x1,x2,label\n1.5,2.3,1\n0.8,-1.2,0\n"
PHISH = "<!channel> <https://phish.example/login|Click to re-auth>"


def _incoming(config):
    incoming = layout.incoming_dir(config)
    incoming.mkdir(parents=True, exist_ok=True)
    return incoming


def _ingest_as_a_run(config):
    """Ingest exactly as a retrain does: run log, notifications.log and the webhook."""
    with RunLog(config.train_log_path, run.TRAIN_STEPS, echo=quiet) as log:
        report, _, _ = run._ingest(config, ModelStore(config.models_dir), log)
    return report


def test_a_file_name_with_a_newline_cannot_forge_a_notification_line(project, monkeypatch):
    monkeypatch.delenv(WEBHOOK_ENV, raising=False)
    forged = "x.csv\n2026-01-01T00:00:00Z PROMOTED      simple_classifier v99 100.00% (forged line)"
    (_incoming(project) / forged).write_bytes(GOOD)
    (_incoming(project) / "good.csv").write_bytes(GOOD)
    report = _ingest_as_a_run(project)
    assert report.accepted == ("good.csv",)
    [(name, reason)] = report.quarantined
    assert "\n" not in name and (layout.quarantine_dir(project) / name).read_bytes() == GOOD, "kept under a safe name"
    assert "control characters" in reason
    lines = project.notifications_path.read_text().splitlines()
    assert [line.split()[1] for line in lines] == ["QUARANTINED"], "one line, no forged PROMOTED line"
    assert "\\n2026-01-01" in lines[0], "the name is shown, escaped"
    run_log = project.train_log_path.read_text().splitlines()
    assert not any(line.startswith("2026-01-01") for line in run_log)


def test_a_file_name_that_is_not_utf8_is_quarantined_under_a_name_that_is(project):
    incoming = _incoming(project)
    os.close(os.open(os.fsencode(incoming) + b"/bad-\xff\xfe.csv", os.O_CREAT | os.O_WRONLY, 0o644))
    report = _ingest_as_a_run(project)
    [(name, _)] = report.quarantined
    name.encode("utf-8")  # a stand-in that every log, page and JSON can carry
    assert sorted(os.listdir(layout.quarantine_dir(project))) == [name, name + ".reason.txt"]
    assert "\\udcff" in project.notifications_path.read_text(), "the original name is shown escaped"


def test_a_header_cannot_ping_a_slack_channel_or_hide_a_link(project, monkeypatch):
    with webhook_receiver() as (base, received, _):
        monkeypatch.setenv(WEBHOOK_ENV, f"{base}/hooks/T")
        (_incoming(project) / "phish.csv").write_bytes(f"{PHISH}*bold* `code` [a](b)\n1,2,1\n".encode())
        _ingest_as_a_run(project)
    [payload] = received
    text = payload["text"]
    unescaped = re.sub(r"\\.", "", text)  # what is left once every backslash escape is taken out
    for markup in "<>|*`[]&":
        assert markup not in unescaped, f"{markup!r} reached the webhook as markup"
    assert "phish.example" in text and "channel" in text, "the content is still shown, as text"
    reason = (layout.quarantine_dir(project) / "phish.csv.reason.txt").read_text()
    assert "<!channel>" not in reason and len(reason) < 600, "short and escaped in the reason file too"


def test_a_hard_link_to_a_file_outside_is_refused_like_a_symlink(project, tmp_path):
    secret = tmp_path / "outside" / "secret.csv"
    secret.parent.mkdir()
    secret.write_bytes(b"x1,x2,label\nTOPSECRET,1,1\n")
    os.link(secret, _incoming(project) / "linked.csv")
    report = inbox.ingest(project)
    [(name, reason)] = report.quarantined
    assert name == "linked.csv" and "hard link" in reason
    assert "TOPSECRET" not in reason, "never read"
    assert secret.read_bytes().startswith(b"x1"), "the other name is untouched"


def test_quoted_text_keeps_plain_words_and_escapes_the_rest():
    assert quoted("x1") == "'x1'"
    assert quoted("a\nb\u202ec") == "'a\\nb\\u202ec'"
    assert quoted("y" * 100, 10) == "'" + "y" * 10 + "...'"
    assert "<" not in quoted("<@U123>") and "*" not in quoted("*a*").replace("\\*", "")
