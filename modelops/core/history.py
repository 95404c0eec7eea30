"""The append-only, machine-readable record of every decision: ``runs/history.jsonl``.

One JSON object per line; its ``event`` is one of ``Event`` (the strings stay as they are:
readers parse them). A year of unattended appends will meet a power loss mid-write or a
damaged byte, so both sides expect damage:

- the writer starts every record on a fresh line (a torn last line gets its newline first, so
  the next record is never glued to it) and writes the whole line, looping on short writes,
  then fsyncs; one ``O_APPEND`` write per record, so readers (the frontend) never see half a
  record from a healthy writer;
- the reader skips lines that are not a UTF-8 JSON object and counts them
  (``Records.skipped``), so the page, ``status``, ``history`` and the metrics keep working
  and can say how many lines they left out.

Free of numpy and TensorFlow: the frontend reads it.
"""

from __future__ import annotations

import enum
import json
import os
import stat
from pathlib import Path
from typing import Any

from modelops.core.errors import StoreError
from modelops.core.timestamps import now_iso


class Event(enum.StrEnum):
    """What a history record says happened."""

    PROMOTE = "promote"  # a run's decision: the candidate was published
    REJECT = "reject"  # a run's decision: the gate refused the candidate
    FAILED = "failed"  # a run's decision: a step failed, nothing was published
    VERIFIED = "verified"  # a run's follow-up: serving answers like the gated model
    UNVERIFIED = "unverified"  # a run's follow-up: serving could not be asked
    VERIFY_FAILED = "verify-failed"  # a run's follow-up: serving disagreed, a rollback follows
    ROLLBACK = "rollback"  # a version was retired (by a run, or by hand)
    UP_TO_DATE = "up-to-date"  # a run's decision: nothing new since the served version, nothing trained
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
    UP_TO_DATE = "up_to_date"


class Records(list[dict[str, Any]]):
    """Readable records, oldest first; ``skipped`` counts the damaged lines left out."""

    skipped: int = 0


def append(path: Path, event: Event, **fields: Any) -> dict[str, Any]:
    """Append one record (``time`` and ``event`` first) and return it.

    StoreError (disk full, not writable) says which file could not be written.
    """
    event = Event(event)  # ValueError for an unknown event
    record = {"time": now_iso(), "event": event.value, **fields}
    line = (json.dumps(record, sort_keys=False) + "\n").encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # the last record was torn: end it, never glue onto it
            _write_all(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise StoreError(f"could not append the {event.value} record to {path}: {exc.strerror or exc}") from exc
    return record


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read(path: Path, limit: int | None = None) -> Records:
    """Records oldest first (the last ``limit`` if given); damaged lines are skipped and counted.

    A damaged line is one that is not UTF-8, not JSON or not a JSON object: a torn write, a
    flipped byte. A missing file is an empty history. Anything but a regular file (a device, a
    FIFO) is a StoreError: reading it could block or never end.
    """
    try:
        with open(path, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise StoreError(f"{path} is not a regular file; the history must be one (restore it from a backup)")
            raw = fh.read()
    except FileNotFoundError:
        return Records()
    records, skipped = [], 0
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            skipped += 1
    result = Records(records[-limit:] if limit else records)
    result.skipped = skipped
    return result


def damage_note(path: Path | str, skipped: int) -> str:
    """One line for people: how many damaged lines were left out, and what to do."""
    return (f"{skipped} damaged line(s) in {path} were skipped (torn or not UTF-8 JSON); "
            "the other records are intact; inspect the file and remove the damaged lines when convenient")
