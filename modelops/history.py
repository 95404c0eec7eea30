"""The append-only, machine-readable record of every decision: ``runs/history.jsonl``.

One JSON object per line; events are ``promote``, ``reject``, ``rollback``, ``verify-failed``,
``unverified``, ``verified`` and ``failed``, and a staged rollout's ``rollout-*`` steps. Lines are
appended with a single ``write`` on an ``O_APPEND`` descriptor, so concurrent readers (the frontend)
never see half a record. Free of numpy and TensorFlow: the frontend reads it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

EVENTS = ("promote", "reject", "rollback", "verify-failed", "unverified", "verified", "failed",
          "rollout-start", "rollout-advance", "rollout-promote", "rollout-abort")


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def append(path: Path, event: str, **fields) -> dict:
    """Append one record (``time`` and ``event`` first) and return it."""
    if event not in EVENTS:
        raise ValueError(f"unknown history event {event!r}")
    record = {"time": now_iso(), "event": event, **fields}
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return record


def read(path: Path, limit: int | None = None) -> list[dict]:
    """Records oldest first (the last ``limit`` if given); unreadable lines are skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records[-limit:] if limit else records
