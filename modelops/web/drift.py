"""Live drift: the rows users send, counted into the serving version's reference slots; ``GET /drift``.

A sliding window of the last ``drift.live_window`` rows, shared by every gunicorn worker: a small
file in ``PROMETHEUS_MULTIPROC_DIR`` (wiped with the metrics when the server starts), mapped into
each worker's memory and written under an ``flock``: a header (version, rows written) and a ring of
one slot number (uint16) per feature per row. Bounded: window x features x 2 bytes. A row is placed
with ``modelops.core.psi.slot``, the function the trainer's batch scoring uses, so live and batch scores
mean the same. Without that directory (a single process: tests, ``flask run``) the ring is in memory.

A row answered by another version than the one the window counts for resets the window to that
version's reference (a promotion or a rollback). Canary answers are not counted (their version is
not the one serving users). Standard library only, like the rest of the frontend.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import mmap
import os
import struct
import threading
from pathlib import Path

from flask import Blueprint, Flask, current_app, jsonify
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from modelops.core import psi
from modelops.web.deps import store

bp = Blueprint("drift", __name__)
HEADER = struct.Struct("<qq")  # version counted for (0: none yet), rows written since it began
FILE_NAME = "live-drift.bin"
MAX_SLOT = 0xFFFF


class LiveWindow:
    """The last ``window`` rows' slots per feature, shared through ``path`` (None: this process only)."""

    def __init__(self, names: tuple[str, ...], window: int, path: Path | None):
        self.names, self.window, self.path = names, window, path
        self.row = struct.Struct(f"={len(names)}H")  # native order: report() reads it back with memoryview.cast
        self.size = HEADER.size + window * self.row.size
        self._pid: int | None = None
        self._map: mmap.mmap | None = None
        self._fd: int | None = None
        self._thread_lock = threading.Lock()
        self._references: dict[int, dict | None] = {}  # version -> its reference features (metrics.json read once)
        self._emptied: int | None = None  # the version without a reference this process last emptied the window for

    def _open(self) -> mmap.mmap:
        """Map the ring, once per process (after gunicorn's fork: an flock is per open file)."""
        if self._pid == os.getpid() and self._map is not None:
            return self._map
        if self.path is None:
            self._map, self._fd = mmap.mmap(-1, self.size), None
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
            if os.fstat(fd).st_size != self.size:
                with _flocked(fd):
                    if os.fstat(fd).st_size != self.size:  # another window size (config changed): start over
                        os.ftruncate(fd, 0)
                        os.ftruncate(fd, self.size)
            self._map, self._fd = mmap.mmap(fd, self.size), fd
        self._pid = os.getpid()
        return self._map

    @contextlib.contextmanager
    def _locked(self):
        ring = self._open()
        with self._thread_lock:
            if self._fd is None:
                yield ring
            else:
                with _flocked(self._fd):
                    yield ring

    def reference(self, version: int) -> dict | None:
        if version not in self._references:
            if len(self._references) > 16:
                self._references.clear()
            ref = psi.reference_of(store().metrics(version))
            self._references[version] = ref["features"] if ref else None
        return self._references[version]

    def observe(self, version: int, rows: list) -> None:
        """Count ``rows`` (lists in feature order, or dicts by feature name) as answered by ``version``."""
        features = self.reference(version)
        if not features:
            if self._emptied != version:  # a version without a reference: no stale window of another one
                with self._locked() as ring:
                    HEADER.pack_into(ring, 0, version, 0)
                self._emptied = version
            return
        self._emptied = None
        packed = [self.row.pack(*self._slots(features, row)) for row in rows[-self.window:]]
        with self._locked() as ring:
            counted, written = HEADER.unpack_from(ring, 0)
            if counted != version:
                counted, written = version, 0
            for record in packed:
                offset = HEADER.size + (written % self.window) * self.row.size
                ring[offset:offset + self.row.size] = record
                written += 1
            HEADER.pack_into(ring, 0, counted, written)

    def _slots(self, features: dict, row) -> list[int]:
        values = row if isinstance(row, dict) else dict(zip(self.names, row, strict=False))
        return [min(psi.slot(features[name], values.get(name)), MAX_SLOT) if name in features else 0
                for name in self.names]

    def report(self, threshold: float, min_rows: int) -> dict:
        """``{"model_version": N, "requests": rows in the window, "features": {name: {"score", "drifted"}}}``."""
        with self._locked() as ring:
            version, written = HEADER.unpack_from(ring, 0)
            rows = min(written, self.window)
            body = bytes(ring[HEADER.size:HEADER.size + rows * self.row.size])
        features = self.reference(version) if version else None
        scores = {}
        if features and rows:
            slots = memoryview(body).cast("H")
            for i, name in enumerate(self.names):
                if name not in features:
                    continue
                counts = [0] * len(features[name]["shares"])
                for s in slots[i::len(self.names)].tolist():
                    if s < len(counts):
                        counts[s] += 1
                score = psi.psi(features[name]["shares"], counts)
                scores[name] = {"score": score, "drifted": rows >= min_rows and score > threshold}
        return {"model_version": version or None, "requests": rows if features else 0, "features": scores}


@contextlib.contextmanager
def _flocked(fd: int):
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


class LiveWindows:
    """One window per feature list: a version trained on another schema counts into its own ring
    (config.json's features keep ``FILE_NAME``; another list a file named by its digest)."""

    def __init__(self, declared: tuple[str, ...], window: int, shared: Path | None):
        self.declared, self.window, self.shared = declared, window, shared
        self._windows: dict[tuple[str, ...], LiveWindow] = {}

    def for_names(self, names: tuple[str, ...]) -> LiveWindow:
        found = self._windows.get(names)
        if found is None:
            name = FILE_NAME if names == self.declared else \
                f"live-drift-{hashlib.sha256(json.dumps(names).encode()).hexdigest()[:12]}.bin"
            found = self._windows[names] = LiveWindow(names, self.window, self.shared / name if self.shared else None)
        return found


def init_app(app: Flask) -> None:
    """The app's live windows (shared through ``PROMETHEUS_MULTIPROC_DIR`` under gunicorn) and ``/drift``."""
    cfg = app.config["MODELOPS"]
    shared = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    app.extensions["live_drift"] = LiveWindows(cfg.schema.names, cfg.drift.live_window,
                                               Path(shared) if shared else None)
    app.register_blueprint(bp)


def _window(version: int | None = None) -> LiveWindow:
    """The window of ``version``'s schema (None: the version the frontend last answered or showed with)."""
    names = current_app.extensions["schemas"].schema(version).names
    return current_app.extensions["live_drift"].for_names(names)


def observe(version: int, rows: list) -> None:
    """The predict view's hook: count the rows it validated and served with ``version``."""
    _window(version).observe(version, rows)


def live_report() -> dict:
    cfg = current_app.config["MODELOPS"].drift
    return _window().report(cfg.threshold, cfg.min_rows)


@bp.get("/drift")
def drift():
    return jsonify(live_report())


def exposition() -> bytes:
    """The live drift gauges in Prometheus text format, computed from the shared window at scrape time."""
    report = live_report()
    registry = CollectorRegistry()
    score, drifted = psi.gauges(("modelops_frontend_live_drift_score", "modelops_frontend_live_drifted"),
                                "the last drift.live_window rows", report["features"])
    rows = GaugeMetricFamily("modelops_frontend_live_drift_rows", "Rows in the live drift window.",
                             value=report["requests"])

    class _Live:
        def collect(self):
            return [score, drifted, rows]

    registry.register(_Live())
    return generate_latest(registry)


SPARK_RUNS = 12  # the model page's chart: the batch scores of the last runs


def page_context(records: list[dict]) -> dict:
    """The model page's drift card: per feature the last batch's and the live score, and a chart of the
    batch scores over the last runs (from the history records, like the accuracy chart)."""
    cfg = current_app.config["MODELOPS"]
    scored = [r for r in records if isinstance(r.get("drift"), dict)][-SPARK_RUNS:]
    live = live_report()
    features = []
    for name in _window().names:
        series = [r["drift"][name] for r in scored if _judged(r["drift"].get(name))]
        features.append({"name": name, "batch": series[-1] if series and _judged(scored[-1]["drift"].get(name))
                         else None, "live": live["features"].get(name),
                         "chart": sparkline([s["score"] for s in series], cfg.drift.threshold)})
    last = scored[-1] if scored else {}
    return {"features": features, "live_rows": live["requests"], "live_version": live["model_version"],
            "batch_version": last.get("drift_reference_version"), "batch_time": last.get("time"),
            "threshold": cfg.drift.threshold, "min_rows": cfg.drift.min_rows, "window": cfg.drift.live_window}


def _judged(found) -> bool:
    return isinstance(found, dict) and isinstance(found.get("score"), (int, float))


def sparkline(scores: list[float], threshold: float, width: int = 120, height: int = 28) -> str:
    """A small inline SVG of ``scores`` (oldest first) with the threshold dashed; "" with fewer than one."""
    if not scores:
        return ""
    top = max(max(scores), 2 * threshold) or 1.0
    step = width / max(len(scores) - 1, 1)

    def y(value: float) -> float:
        return round(height - 2 - (height - 4) * min(value, top) / top, 1)

    points = " ".join(f"{round(i * step, 1)},{y(s)}" for i, s in enumerate(scores))
    over = ' class="over"'
    dots = "".join(f'<circle cx="{round(i * step, 1)}" cy="{y(s)}" r="2"{over if s > threshold else ""}/>'
                   for i, s in enumerate(scores))
    return (f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="batch drift over the last {len(scores)} runs">'
            f'<line x1="0" x2="{width}" y1="{y(threshold)}" y2="{y(threshold)}" class="limit"/>'
            f'<polyline points="{points}"/>{dots}</svg>')
