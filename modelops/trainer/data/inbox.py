"""Ingest: judge every CSV batch dropped into ``data/incoming/``, accept it or quarantine it (docs/data.md).

Batches are checked one file at a time against the declared schema (``csv_rows``), streamed, so
memory stays bounded whatever the file. A good batch moves to ``data/accepted/`` (with its cached
copy); anything else, whatever went wrong reading it, moves to ``data/quarantine/`` next to a
``.reason.txt`` saying what is wrong and how to fix it, and the run goes on with the good data: one
bad file never blocks the loop. Entries that are not regular files (symlinks, FIFOs, directories)
are never followed or opened, nor is a file with a second hard link (it may live outside the
project); a name with control characters or undecodable bytes is quarantined under a stand-in.
Hand-off names (``*.partial``, ``*.tmp``, dot files) are ignored, and a file that changes while
ingest looks at it is left for the next run. With no data at all a seeded
synthetic bootstrap batch is written for the demo schema, so the demo works on a fresh clone; any
other schema waits for real data.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelops.core.config import Config, DataConfig
from modelops.core.errors import DataError
from modelops.core.untrusted import quoted, safe_file_name
from modelops.trainer.data import cache
from modelops.trainer.data.csv_rows import read_rows
from modelops.trainer.data.layout import accepted_dir, free_name, incoming_dir, quarantine_dir
from modelops.trainer.data.retire import retire_demo_batches
from modelops.trainer.data.synthetic import synthetic, write_batch
from modelops.trainer.data.tables import Batch, no_text

HANDOFF_SUFFIXES = (".partial", ".tmp")  # names still being written: never judged
RETRY = ("fix it and put it back into data/incoming/ (python retrain_pipeline.py add-batch FILE; under Docker "
         "Compose through docker compose exec -T trainer, docs/data.md): the next run picks it up; or delete it")


@dataclass(frozen=True)
class IngestReport:
    accepted: tuple[str, ...]
    quarantined: tuple[tuple[str, str], ...]  # (file name, reason)
    rows_accepted: int
    bootstrapped: bool
    waiting: tuple[str, ...] = ()  # still changing: left for the next run
    ignored: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (file name, its columns the schema does not declare)
    retired: tuple[str, ...] = ()  # the demo's synthetic batches moved out of the window (data/retired/)


def ingest(config: Config) -> IngestReport:
    """Judge every settled entry in ``incoming/``: accept or quarantine it; bootstrap if no data."""
    inbox, accepted, quarantine = incoming_dir(config), accepted_dir(config), quarantine_dir(config)
    for d in (inbox, accepted, quarantine):
        d.mkdir(parents=True, exist_ok=True)
    retired = retire_demo_batches(config)
    entries = _inbox_entries(inbox)
    waiting = _still_changing(entries, config.data.settle_seconds)
    good, bad, ignored, rows = [], [], [], 0
    for path, st in entries:
        if path.name in waiting:
            continue
        try:
            batch = _read_batch(path, st, config)
        except FileNotFoundError:
            continue  # taken away since the listing: nothing to judge
        except DataError as exc:
            bad.append(_quarantine(path, quarantine, str(exc)))
            continue
        try:
            _accept(config, path, batch)
        except OSError as exc:
            bad.append(_quarantine(path, quarantine, _os_problem("moving it to data/accepted/", exc)))
            continue
        good.append(path.name)
        rows += len(batch)
        if batch.ignored:
            ignored.append((path.name, batch.ignored))
    bootstrapped = False
    if config.schema.is_demo and not any(accepted.glob("*.csv")):
        x, y = synthetic(config.data.bootstrap_rows, seed=config.train.seed)
        write_batch(accepted / "bootstrap.csv", x, y)
        # cached at once, as an accepted batch is: our own rows are never judged by the limits for incoming files
        cache.store(config, accepted / "bootstrap.csv", Batch(np.column_stack([x, y]), no_text(len(x))))
        bootstrapped = True
    return IngestReport(tuple(good), tuple(bad), rows, bootstrapped, tuple(sorted(waiting)), tuple(ignored), retired)


def _accept(config: Config, path: Path, rows: Batch) -> None:
    target = free_name(accepted_dir(config), path.name)
    os.replace(path, target)
    with contextlib.suppress(OSError):
        os.utime(target)  # the acceptance time: the window takes the newest batches
    cache.store(config, target, rows)


def _inbox_entries(inbox: Path) -> list[tuple[Path, os.stat_result]]:
    """Every entry to judge, with its lstat (links are not followed); hand-off names are skipped."""
    entries = []
    for path in sorted(inbox.iterdir()):
        if path.name.startswith(".") or path.name.lower().endswith(HANDOFF_SUFFIXES):
            continue
        with contextlib.suppress(FileNotFoundError):
            entries.append((path, os.lstat(path)))
    return entries


def _still_changing(entries: list[tuple[Path, os.stat_result]], settle: float) -> set[str]:
    """Names of the files modified in the last ``settle`` seconds that change while we wait that long.

    One wait covers every fresh file (at most ``settle`` seconds); a file left here is judged by the
    next run, once its copy has finished.
    """
    now = time.time()
    fresh = [(p, st) for p, st in entries if stat.S_ISREG(st.st_mode) and now - st.st_mtime < settle]
    if not fresh:
        return set()
    time.sleep(min(settle, max(st.st_mtime for _, st in fresh) + settle - now))
    changing = set()
    for path, st in fresh:
        try:
            again = os.lstat(path)
        except FileNotFoundError:
            again = None
        if again is None or (again.st_ino, again.st_size, again.st_mtime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns):
            changing.add(path.name)
    return changing


def _read_batch(path: Path, st: os.stat_result, config: Config) -> Batch:
    """Check the entry by its lstat, then open it without following links and parse it streaming."""
    limits = config.data
    _check_entry(path, st, limits)
    if safe_file_name(path.name) is not None:
        raise DataError(f"its name {quoted(path.name)} holds control characters or bytes that are not UTF-8: "
                        "quarantined under a stand-in name; give it a plain name")
    if path.suffix.lower() != ".csv":
        raise DataError("not a .csv file: batches are CSV files named *.csv")
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise DataError(_os_problem("cannot open it", exc)) from None
    with open(fd, "rb") as raw:
        _check_entry(path, os.fstat(raw.fileno()), limits)  # swapped for something else since the listing?
        try:
            return read_rows(raw, limits, config.schema)
        except OSError as exc:
            raise DataError(_os_problem("reading it failed", exc)) from None


def _check_entry(path: Path, st: os.stat_result, limits: DataConfig) -> None:
    if stat.S_ISLNK(st.st_mode):
        try:
            target = f" to {quoted(os.readlink(path))}"
        except OSError:
            target = ""
        raise DataError(f"a symbolic link{target}, not a file: links are never followed; "
                        "copy the file itself into data/incoming/")
    if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:  # the same file also lives elsewhere, maybe outside
        raise DataError(f"a hard link ({st.st_nlink} names for one file), not a file of its own: never read, "
                        "as links are not; copy the file itself into data/incoming/")
    if stat.S_ISDIR(st.st_mode):
        raise DataError("a directory: put the CSV files themselves into data/incoming/")
    if not stat.S_ISREG(st.st_mode):
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "a socket or device"
        raise DataError(f"{kind}, not a regular file: never opened; write the batch to a file")
    if st.st_size > limits.max_batch_bytes:
        raise DataError(f"{st.st_size} bytes, over data.max_batch_bytes ({limits.max_batch_bytes}): "
                        "split it into smaller batches (or raise the limit)")


def _os_problem(what: str, exc: OSError) -> str:
    hint = " (make it readable by the user the trainer runs as)" if isinstance(exc, PermissionError) else ""
    return f"{what}: {exc.strerror or exc}{hint}"


def _quarantine(path: Path, quarantine: Path, reason: str) -> tuple[str, str]:
    """Move an entry (never following it) into quarantine next to its reason; return its name there
    (a stand-in for a name with control characters or undecodable bytes) and the reason."""
    name = safe_file_name(path.name) or path.name
    target = free_name(quarantine, name)
    try:
        os.replace(path, target)
    except OSError as exc:
        return name, f"{reason} (could not move it to {quarantine}: {exc.strerror or exc}; it stays in data/incoming/)"
    with contextlib.suppress(OSError):  # the reason is also in the run log and the notification
        target.with_name(target.name + ".reason.txt").write_text(
            f"{quoted(path.name, 255)}: {reason}\nTo use it: {RETRY}.\n", encoding="utf-8")
    return name, reason
