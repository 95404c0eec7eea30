"""The append-only, machine-readable record of every decision: ``runs/history.jsonl``.

One JSON object per line; its ``event`` is one of ``Event`` (the strings stay as they are:
readers parse them). Lines are appended with a single ``write`` on an ``O_APPEND``
descriptor, so concurrent readers (the frontend) never see half a record. Free of numpy and
TensorFlow: the frontend reads it.
"""

from __future__ import annotations

import enum
import json
import os
from pathlib import Path

from modelops.timestamps import now_iso


class Event(enum.StrEnum):
    """What a history record says happened."""

    PROMOTE = "promote"  # a run's decision: the candidate was published
    REJECT = "reject"  # a run's decision: the gate refused the candidate
    FAILED = "failed"  # a run's decision: a step failed, nothing was published
    VERIFIED = "verified"  # a run's follow-up: serving answers like the gated model
    UNVERIFIED = "unverified"  # a run's follow-up: serving could not be asked
    VERIFY_FAILED = "verify-failed"  # a run's follow-up: serving disagreed, a rollback follows
    ROLLBACK = "rollback"  # a version was retired (by a run, or by hand)
    ROLLOUT_START = "rollout-start"  # a staged rollout: the candidate loads beside the champion
    ROLLOUT_ADVANCE = "rollout-advance"  # a staged rollout: shadow -> canary
    ROLLOUT_PROMOTE = "rollout-promote"  # a staged rollout: the candidate is stable now
    ROLLOUT_ABORT = "rollout-abort"  # a staged rollout: the candidate is retired


class Outcome(enum.StrEnum):
    """How a retrain ended, derived from its records (``modelops_trainer_runs{outcome}``)."""

    PROMOTED = "promoted"
    REJECTED = "rejected"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


def append(path: Path, event: Event, **fields) -> dict:
    """Append one record (``time`` and ``event`` first) and return it."""
    event = Event(event)  # ValueError for an unknown event
    record = {"time": now_iso(), "event": event.value, **fields}
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
