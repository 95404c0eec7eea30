"""The model store: versioned SavedModels under ``models/``, as TF Serving reads them.

Only numeric directory names are served, and TF Serving loads any numeric directory the moment
it appears, even half-written. So a version is published by building it completely in a
non-numeric sibling (``.tmp-<N>``) on the same filesystem and renaming it to ``<N>`` in one
atomic step. Retiring (rollback) renames the top version to ``.retired/<N>``, out of the served
path, so TF Serving falls back to the next one. Version numbers come from a high-water mark that
counts rejected and retired candidates too, so a number is never reused.

Writers (retrain, rollback) hold one exclusive lock (``models/.lock``) for the whole run.
This module stays free of TensorFlow and numpy: the frontend reads versions through it.
"""

from __future__ import annotations

import calendar
import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from modelops.core.errors import LockBusyError, StoreError
from modelops.core.timestamps import now_iso

METRICS_FILE = "metrics.json"
TMP_PREFIX = ".tmp-"
RETIRED_DIR = ".retired"
COUNTER_FILE = ".last_version"
LOCK_FILE = ".lock"


class ModelStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    # --- reading (safe without the lock) ---

    def versions(self) -> list[int]:
        """Served versions (numeric directories), ascending."""
        if not self.root.is_dir():
            return []
        return sorted(int(p.name) for p in self.root.iterdir() if p.name.isdigit() and p.is_dir())

    def latest(self) -> int | None:
        """The version TF Serving serves: the highest numeric directory."""
        versions = self.versions()
        return versions[-1] if versions else None

    def path(self, version: int) -> Path:
        return self.root / str(version)

    def retired(self) -> list[int]:
        d = self.root / RETIRED_DIR
        return sorted(int(p.name) for p in d.iterdir() if p.name.isdigit()) if d.is_dir() else []

    def metrics(self, version: int, retired: bool = False) -> dict[str, Any] | None:
        """A version's ``metrics.json``, or None when missing or unreadable."""
        base = self.root / RETIRED_DIR if retired else self.root
        try:
            metrics: dict[str, Any] = json.loads((base / str(version) / METRICS_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return metrics

    # --- writing (hold the lock) ---

    @contextlib.contextmanager
    def lock(self, wait_seconds: float = 0.0, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Exclusive writer lock; LockBusyError if still held after ``wait_seconds``.

        ``on_wait(holder)`` is called once if the lock is busy and the caller is going to wait.
        """
        path = self.root / LOCK_FILE
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (closed by the with below)
        except OSError as exc:
            raise StoreError(f"cannot take the writer lock {path}: {_describe(exc)}") from exc
        with fh:
            deadline = time.monotonic() + wait_seconds
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    fh.seek(0)
                    holder = fh.read().strip() or "unknown"
                    if time.monotonic() >= deadline:
                        raise LockBusyError(
                            f"another retrain or rollback is running ({holder}); "
                            "try again when it finishes, or pass --wait SECONDS"
                        ) from None
                    if on_wait is not None:
                        on_wait(holder)
                        on_wait = None
                    time.sleep(0.2)
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()} since {now_iso()}")
            fh.flush()
            try:
                yield
            finally:
                fh.seek(0)
                fh.truncate()
                fh.flush()
                fcntl.flock(fh, fcntl.LOCK_UN)

    def lock_holder(self) -> tuple[int, float] | None:
        """``(pid, epoch seconds it took the lock)`` of the live writer, or None; never takes the lock.

        Reads what ``lock()`` writes into the lock file; a holder that was killed leaves its line
        behind, so the pid must still exist.
        """
        try:
            text = (self.root / LOCK_FILE).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        match = re.fullmatch(r"pid (\d+) since (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)", text)
        if match is None:
            return None
        pid = int(match[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by another user
        return pid, float(calendar.timegm(time.strptime(match[2], "%Y-%m-%dT%H:%M:%SZ")))

    def clean_stale(self) -> list[str]:
        """Remove temp directories left by a crashed publish (only the lock holder may call)."""
        removed = []
        for p in self.root.glob(TMP_PREFIX + "*"):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p.name)
        return removed

    def reserve_version(self) -> int:
        """The next version number, never used before by a served, retired or rejected model."""
        self.root.mkdir(parents=True, exist_ok=True)
        counter = self.root / COUNTER_FILE
        try:
            last = int(counter.read_text(encoding="utf-8").strip() or 0)
        except FileNotFoundError:
            last = 0
        except ValueError:
            raise StoreError(f"{counter} is corrupt; it must hold the last version number") from None
        version = max([last, *self.versions(), *self.retired()]) + 1
        write_text_atomic(counter, f"{version}\n")
        return version

    def publish(self, candidate: Path, version: int, metrics: dict[str, Any]) -> Path:
        """Copy the candidate in as ``<version>`` with its metrics, appearing in one rename."""
        target = self.path(version)
        if target.exists():
            raise StoreError(f"version {version} already exists in {self.root}")
        tmp = self.root / f"{TMP_PREFIX}{version}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            _copy_durably(candidate, tmp)
            write_json_atomic(tmp / METRICS_FILE, metrics)
            os.rename(tmp, target)
            _fsync_dir(self.root)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise StoreError(f"could not publish version {version} to {self.root}: {_describe(exc)}") from exc
        return target

    def annotate(self, version: int, key: str, value: Any) -> None:
        """Set one key of a served version's ``metrics.json`` (replaced atomically; the model is untouched)."""
        metrics = self.metrics(version)
        if metrics is None:
            raise StoreError(f"version {version} has no readable {METRICS_FILE} in {self.root}")
        try:
            write_text_atomic(self.path(version) / METRICS_FILE, json.dumps({**metrics, key: value}, indent=2) + "\n")
        except OSError as exc:
            raise StoreError(f"could not update {METRICS_FILE} of version {version}: {_describe(exc)}") from exc

    def retire(self, version: int) -> Path:
        """Move a served version out of the served path (TF Serving falls back to the next)."""
        source = self.path(version)
        if not source.is_dir():
            raise StoreError(f"version {version} is not in {self.root}; served versions: {self.versions()}")
        graveyard = self.root / RETIRED_DIR
        try:
            graveyard.mkdir(exist_ok=True)
            target = graveyard / str(version)
            if target.exists():
                shutil.rmtree(target)
            os.rename(source, target)
            _fsync_dir(self.root)
        except OSError as exc:
            raise StoreError(f"could not retire version {version}: {_describe(exc)}") from exc
        return target


def _describe(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"the models directory is not writable ({exc.strerror})"
    return str(exc)


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """``payload`` as indented JSON at ``path``, replaced in one rename: a reader or a crash never
    meets half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(payload, indent=2) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """``text`` at ``path`` (its directory must exist), replaced in one rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _copy_durably(source: Path, target: Path) -> None:
    """Copy a tree file by file, each flushed to disk, so the rename publishes complete data.

    Unlike ``shutil.copytree``, the first failure raises its own OSError (errno kept), so a full
    disk is reported as such.
    """
    for dirpath, _, filenames in os.walk(source):
        directory = target / Path(dirpath).relative_to(source)
        directory.mkdir(parents=True, exist_ok=True)
        for name in filenames:
            shutil.copyfile(Path(dirpath) / name, directory / name)
            with open(directory / name, "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(directory)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
