"""The append-only, machine-readable record of every decision: ``runs/history.jsonl``.

One JSON object per line; events are ``promote``, ``reject``, ``rollback``, ``verify-failed``,
``unverified``, ``verified`` and ``failed``. A year of unattended appends will meet a power
loss mid-write or a damaged byte, so both sides expect damage:

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

import json
import os
import time
from pathlib import Path

from modelops.errors import StoreError

EVENTS = ("promote", "reject", "rollback", "verify-failed", "unverified", "verified", "failed")


class Records(list):
    """Readable records, oldest first; ``skipped`` counts the damaged lines left out."""

    skipped: int = 0


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def append(path: Path, event: str, **fields) -> dict:
    """Append one record (``time`` and ``event`` first) and return it.

    StoreError (disk full, not writable) says which file could not be written.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown history event {event!r}")
    record = {"time": now_iso(), "event": event, **fields}
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
        raise StoreError(f"could not append the {event} record to {path}: {exc.strerror or exc}") from exc
    return record


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read(path: Path, limit: int | None = None) -> Records:
    """Records oldest first (the last ``limit`` if given); damaged lines are skipped and counted.

    A damaged line is one that is not UTF-8, not JSON or not a JSON object: a torn write, a
    flipped byte. A missing file is an empty history.
    """
    try:
        raw = Path(path).read_bytes()
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


def damage_note(path: Path, skipped: int) -> str:
    """One line for people: how many damaged lines were left out, and what to do."""
    return (f"{skipped} damaged line(s) in {path} were skipped (torn or not UTF-8 JSON); "
            "the other records are intact; inspect the file and remove the damaged lines when convenient")
