"""``schedule.triggers``: the trainer service starts a retrain early on evidence, not only on the cron.

Every ``check_seconds`` the service lists ``data/incoming/`` (names and sizes: one directory read
and one ``lstat`` per file; no data file is opened) and starts a retrain when

- ``min_new_rows``: the waiting CSV files hold about that many rows, estimated from their sizes and
  the bytes per row of the serving version's training batches (its ``metrics.json`` reference,
  read once per version); or
- ``on_drift``: a waiting batch drifted from the serving version's reference. Telling needs the
  rows, so each new batch is read once, after it has kept its size for one check (a copy still
  being written is not judged), with the same streaming validation ingest uses; a batch already
  judged is never read again, so an idle service reads nothing.

At most one triggered run per ``min_interval_seconds``, counted from the last triggered run in the
history, so a restart does not start another one early. The cron stays: triggers only add runs.
"""

from __future__ import annotations

import contextlib
import os
import time

from modelops.core import history, psi
from modelops.core.config import Config
from modelops.core.errors import ModelopsError
from modelops.core.store import ModelStore
from modelops.core.timestamps import parse_iso
from modelops.trainer import drift
from modelops.trainer.data import csv_rows, layout, tables

KINDS = ("new_rows", "drift")  # a record's ``trigger`` starts with one of these when a trigger started its run


def inbox_sizes(config: Config) -> dict[str, int]:
    """The CSV files waiting in ``data/incoming/`` by name and size: one listing and one lstat each, no reads."""
    sizes = {}
    with contextlib.suppress(FileNotFoundError), os.scandir(layout.incoming_dir(config)) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith(".") or not name.lower().endswith(".csv"):
                continue
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False):
                    sizes[name] = entry.stat(follow_symlinks=False).st_size
    return sizes


class Triggers:
    def __init__(self, config: Config, clock=time.monotonic):
        self.config, self.cfg, self.clock = config, config.schedule.triggers, clock
        self.store = ModelStore(config.models_dir)
        self._checked = float("-inf")
        self._reference: tuple[int | None, dict | None] = (None, None)
        self._sizes: dict[str, int] = {}  # the previous listing: a batch judged on drift kept its size since
        self._judged: dict[tuple[str, int], list[str]] = {}  # (name, size) -> its drifted features

    def due(self) -> str | None:
        """Why a retrain should start now (the ``trigger`` recorded with it), or None; looks every check_seconds."""
        now = self.clock()
        if not self.cfg.enabled or now - self._checked < self.cfg.check_seconds:
            return None
        self._checked = now
        sizes = inbox_sizes(self.config)
        reason = self._new_rows(sizes) or self._drifted(sizes)
        self._sizes = sizes
        if reason is None or self._too_soon():
            return None
        return reason

    def _served_reference(self) -> dict | None:
        served = self.store.latest()
        if served != self._reference[0]:
            self._reference = (served, psi.reference_of(self.store.metrics(served)) if served is not None else None)
        return self._reference[1]

    def _new_rows(self, sizes: dict[str, int]) -> str | None:
        ref = self._served_reference()
        per_row = (ref or {}).get("bytes_per_row")
        if not self.cfg.min_new_rows or not sizes or not isinstance(per_row, (int, float)) or per_row <= 0:
            return None
        rows = int(sum(sizes.values()) / per_row)
        if rows < self.cfg.min_new_rows:
            return None
        return (f"new_rows: about {rows} new rows waiting in {len(sizes)} batch(es) in data/incoming/ "
                f"(schedule.triggers.min_new_rows {self.cfg.min_new_rows})")

    def _drifted(self, sizes: dict[str, int]) -> str | None:
        ref = self._served_reference()
        if not self.cfg.on_drift or ref is None:
            return None
        settled = [(name, size) for name, size in sorted(sizes.items()) if self._sizes.get(name) == size]
        for key in settled:
            if key not in self._judged:
                self._judged[key] = self._judge(key[0], ref)
            if self._judged[key]:
                return f"drift: {key[0]} drifted on {', '.join(self._judged[key])} against v{self._reference[0]}"
        self._judged = {key: found for key, found in self._judged.items() if key in sizes.items()}
        return None

    def _judge(self, name: str, ref: dict) -> list[str]:
        """The drifted features of one waiting batch (none if it cannot be read: ingest will say why)."""
        cfg = self.config.drift
        try:
            with open(layout.incoming_dir(self.config) / name, "rb") as raw:
                batch = csv_rows.read_rows(raw, self.config.data, self.config.schema)
        except (ModelopsError, OSError):
            return []
        return drift.drifted_names(drift.score(ref, drift.of_batch(self.config.schema, batch), cfg.threshold,
                                               cfg.min_rows))

    def _too_soon(self) -> bool:
        """Whether a triggered run started within min_interval_seconds (from the history: restarts keep it)."""
        records = history.read(self.config.history_path)
        last = next((r for r in reversed(records) if str(r.get("trigger", "")).startswith(KINDS)), None)
        if last is None:
            return False
        with contextlib.suppress(ValueError):
            return time.time() - parse_iso(str(last.get("time"))) < self.cfg.min_interval_seconds
        return False


def bytes_per_row(config: Config, dataset: tables.Dataset) -> float | None:
    """The accepted batches' size per row, for estimating rows from file sizes (stat only)."""
    size = 0
    for name in dataset.files:
        with contextlib.suppress(OSError):
            size += (layout.accepted_dir(config) / name).stat().st_size
    rows = len(dataset) + dataset.duplicates
    return round(size / rows, 3) if size and rows else None
