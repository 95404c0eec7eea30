"""``retention`` in config.json: what a retrain prunes at its end, so the disk stops growing.

Off by default (every limit 0 = keep everything, as before): pruning deletes versions and data
for good and stops ``reproduce`` for what it removed, so an operator opts in. When on, after each
retrain (under its writer lock):

- ``keep_versions``: published and retired versions beyond the newest N are deleted, never the
  served version, the previous one (the rollback target) nor either side of a staged rollout.
- ``accepted_days``: accepted batches older than that (by their time of acceptance, the window's
  order) are deleted, never one inside the current window (the newest ``data.window.max_batches``)
  nor one the served or previous version was trained on (rollback and ``reproduce`` need them).
- ``cache_days``: cached copies older than that, or of a batch no longer accepted, are deleted,
  never those of batches inside the window.

What was pruned goes to the run log and to ``runs/retention.jsonl``, which ``reproduce`` reads to
say "pruned by retention" instead of "not found".
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from modelops.core import history, rollout
from modelops.core.config import Config
from modelops.core.errors import ModelopsError
from modelops.core.store import RETIRED_DIR, TMP_PREFIX, ModelStore
from modelops.core.timestamps import now_iso
from modelops.trainer.data.layout import accepted_dir, cache_dir

LEDGER = "retention.jsonl"
DAY = 86400.0
LABELS = {"version": "version(s)", "batch": "accepted batch(es)", "cache": "cached copies"}
_Result = TypeVar("_Result")


def ledger_path(config: Config) -> Path:
    return config.runs_dir / LEDGER


def after(result: _Result, config: Config, store: ModelStore, note: Callable[[str], None]) -> _Result:
    """Prune at the end of a run and hand its result on: the run is decided and recorded already, so a
    failure here is a line in the run log, never a failed run."""
    try:
        prune(config, store, note)
    except (OSError, ModelopsError) as exc:
        note(f"retention: pruning stopped: {exc}")
    return result


def prune(config: Config, store: ModelStore, note: Callable[[str], None]) -> dict[str, list[str]]:
    """Apply ``retention``; ``note`` gets one line saying what went. Never raises for a file it cannot delete."""
    keep = config.retention
    if not (keep.keep_versions or keep.accepted_days or keep.cache_days):
        return {}
    now = time.time()
    window = _window(config)
    pruned = {
        "version": _prune_versions(config, store) if keep.keep_versions else [],
        "batch": _prune_batches(config, store, window, now) if keep.accepted_days else [],
    }
    pruned["cache"] = _prune_cache(config, window, now)
    _append_ledger(config, pruned)
    counts = ", ".join(f"{len(v)} {LABELS[k]}" for k, v in pruned.items() if v)
    versions = f" (v{', v'.join(pruned['version'])})" if pruned["version"] else ""
    note(f"retention: pruned {counts}{versions}" if counts else "retention: nothing to prune")
    return pruned


def protected_versions(config: Config, store: ModelStore) -> set[int]:
    """The served and previous versions and both sides of a staged rollout (in progress or just settled)."""
    records = history.read(config.history_path)
    kept = set(store.versions()[-2:])
    state = rollout.state(records)
    if state is not None:
        kept |= {state.stable, state.candidate}
    settled = rollout.settled(records)
    return kept | ({settled} if settled is not None else set())


def _prune_versions(config: Config, store: ModelStore) -> list[str]:
    every = sorted({*store.versions(), *store.retired()})
    newest = set(every[-config.retention.keep_versions:])
    keep = newest | protected_versions(config, store)
    gone = []
    for version in every:
        if version in keep:
            continue
        for path in (store.path(version), store.root / RETIRED_DIR / str(version)):
            if path.is_dir() and _remove_dir(store.root, path):
                gone.append(str(version))
    return gone


def _remove_dir(root: Path, path: Path) -> bool:
    """Rename out of sight first (a crash leaves a temp folder the next run cleans), then delete."""
    doomed = root / f"{TMP_PREFIX}pruned-{path.parent.name}-{path.name}"
    try:
        os.rename(path, doomed)
    except OSError:
        return False
    shutil.rmtree(doomed, ignore_errors=True)
    return True


def _window(config: Config) -> list[Path]:
    """The accepted batches a retrain may use, newest first (a superset of the window: no rows are read)."""
    files = sorted(_entries(accepted_dir(config), "*.csv"), key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
    return files[:config.data.window.max_batches]


def _prune_batches(config: Config, store: ModelStore, window: list[Path], now: float) -> list[str]:
    keep = {p.name for p in window} | _trained_on(store, protected_versions(config, store))
    cutoff = now - config.retention.accepted_days * DAY
    gone = []
    for path in _entries(accepted_dir(config), "*.csv"):
        if path.name not in keep and _older(path, cutoff) and _unlink(path):
            gone.append(path.name)
    return sorted(gone)


def _prune_cache(config: Config, window: list[Path], now: float) -> list[str]:
    """Copies of batches no longer accepted always go (when retention is on), old ones after ``cache_days``."""
    accepted = {p.name for p in _entries(accepted_dir(config), "*.csv")}
    in_window = {p.name for p in window}
    days = config.retention.cache_days
    cutoff = now - days * DAY if days else None
    gone = []
    for path in _entries(cache_dir(config), "*.npy"):
        batch = _cached_batch(path.name)
        stale = batch not in accepted or (cutoff is not None and batch not in in_window and _older(path, cutoff))
        if stale and _unlink(path):
            gone.append(path.name)
    return sorted(gone)


def _cached_batch(name: str) -> str:
    """The batch a cached copy belongs to: ``{batch}.{size}-{mtime}-{schema}[.text].npy`` (data/cache.py)."""
    return name.removesuffix(".npy").removesuffix(".text").rsplit(".", 1)[0]


def _trained_on(store: ModelStore, versions: Iterable[int]) -> set[str]:
    names: set[str] = set()
    for version in versions:
        metrics = store.metrics(version) or store.metrics(version, retired=True) or {}
        lineage = metrics.get("lineage")
        files = lineage.get("dataset_files") if isinstance(lineage, dict) else None
        names |= {f for f in files if isinstance(f, str)} if isinstance(files, list) else set()
    return names


def _entries(directory: Path, pattern: str) -> list[Path]:
    return [p for p in directory.glob(pattern) if p.is_file()] if directory.is_dir() else []


def _older(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime < cutoff
    except OSError:
        return False


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except OSError:
        return False
    return True


def _append_ledger(config: Config, pruned: dict[str, list[str]]) -> None:
    lines = [json.dumps({"time": now_iso(), "kind": kind, "name": name})
             for kind in ("version", "batch") for name in pruned[kind]]
    if lines:
        config.runs_dir.mkdir(parents=True, exist_ok=True)
        with ledger_path(config).open("a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")


def when_pruned(config: Config, kind: str, names: Iterable[str]) -> dict[str, str]:
    """Which of ``names`` (versions as text, or batch names) retention pruned, and when."""
    wanted, found = set(names), dict[str, str]()
    try:
        text = ledger_path(config).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return found
    for line in text.splitlines():
        try:
            entry: Any = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("kind") == kind and entry.get("name") in wanted:
            found[str(entry["name"])] = str(entry.get("time", "?"))
    return found
