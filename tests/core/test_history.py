"""The decision history survives damage: damaged lines are skipped and counted, never glued to."""

import json
import os
from pathlib import Path

import pytest

from modelops.core import history
from modelops.core.errors import StoreError
from tests.conftest import run_cli


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")


def test_damaged_lines_are_skipped_and_counted(tmp_path):
    path = tmp_path / "history.jsonl"
    first = history.append(path, "promote", version=1)
    with open(path, "ab") as fh:
        fh.write(b'{"time": "2026-01-01T00:00:00Z", "event": "rej\xffect"}\n')  # a flipped byte: not UTF-8
        fh.write(b"not json at all\n")
        fh.write(b'["a", "list"]\n')  # JSON, but not a record
        fh.write(b"\n")  # blank lines are not damage
    last = history.append(path, "reject", version=2)
    records = history.read(path)
    assert list(records) == [first, last]
    assert records.skipped == 3
    assert history.read(path, limit=1) == [last] and history.read(path, limit=1).skipped == 3


def test_a_torn_last_line_is_skipped_and_the_next_record_starts_on_a_fresh_line(tmp_path):
    path = tmp_path / "history.jsonl"
    first = history.append(path, "promote", version=1)
    with open(path, "ab") as fh:  # power loss in the middle of an append
        fh.write(json.dumps({"time": "2026-01-01T00:00:00Z", "event": "reject", "version": 2}).encode()[:30])
    after = history.append(path, "failed", version=None, reasons=["interrupted"])
    records = history.read(path)
    assert list(records) == [first, after]
    assert records.skipped == 1
    assert _lines(path)[-1] == b"" and json.loads(_lines(path)[-2]) == after


def test_short_writes_still_write_the_whole_record(tmp_path, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))  # the kernel may do this
    path = tmp_path / "history.jsonl"
    record = history.append(path, "promote", version=1, reasons=["a reason long enough for many short writes"])
    assert history.read(path) == [record] and history.read(path).skipped == 0


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_is_a_store_error_naming_the_file(tmp_path):
    path = tmp_path / "history.jsonl"
    path.symlink_to("/dev/full")  # every write fails with ENOSPC, as on a full disk
    with pytest.raises(StoreError, match="could not append the promote record to .*history.jsonl"):
        history.append(path, "promote", version=1)


def test_a_missing_history_is_empty(tmp_path):
    records = history.read(tmp_path / "history.jsonl")
    assert records == [] and records.skipped == 0


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_history_that_is_no_regular_file_is_refused_not_read_forever(tmp_path):
    path = tmp_path / "history.jsonl"
    path.symlink_to("/dev/zero")  # endless bytes: reading it whole would exhaust memory
    with pytest.raises(StoreError, match="not a regular file"):
        history.read(path)


def test_status_and_history_commands_work_on_a_damaged_history(project):
    kept = history.append(project.history_path, "reject", version=1, accuracy_percent=90.0, reasons=["too low"])
    with open(project.history_path, "ab") as fh:
        fh.write(b'{"event": "prom\xe9te", "version": 2}\n')  # a Latin-1 byte in a UTF-8 file
    config = str(project.root / "config.json")

    status = run_cli("--config", config, "status")
    assert status.returncode == 0, status.stderr
    assert "Traceback" not in status.stdout + status.stderr
    assert "reject" in status.stdout and "too low" in status.stdout
    assert "1 damaged line(s)" in status.stdout

    listed = run_cli("--config", config, "history", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line) for line in listed.stdout.splitlines()] == [kept]
    assert "1 damaged line(s)" in listed.stderr and "Traceback" not in listed.stderr
