"""Staged rollout in the frontend: which version answers a request, shadow mirrors, per-label metrics.

The rollout state comes from the history records (read-only, re-read when the file changes,
looked at no more than once per ``STATE_TTL_SECONDS``), so every worker and replica routes the
same way and a restart changes nothing. The labels are resolved to version numbers here and
requests go to ``/versions/<N>:predict``: the answer's version (``X-Model-Version``) is then
exact, and a label move TF Serving has not polled yet cannot misroute. A version that vanished
(404: promoted or aborted meanwhile) makes the state re-read and the request retried once.

- ``direct`` mode, or no rollout: TF Serving's latest version answers, as before.
- During a rollout, users are answered by ``stable``; in ``canary``, a sticky share of clients
  (a hash of the connection's address, or of ``X-Client-Id`` when the connection comes from one
  of ``rollout.trusted_proxies``) by the candidate. A client's own header is ignored: otherwise
  one client could put itself in the canary and flood it to abort a rollout.
- ``shadow``: a fraction of requests is also sent to the candidate by a small pool of background
  threads fed through a bounded queue: the user's answer never waits for it nor fails with it,
  and a full queue drops the mirror (counted).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import queue
import random
import threading
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram

from modelops.core import history, predictions, rollout
from modelops.core.config import RolloutConfig
from modelops.core.errors import ServingError, ServingHTTPError
from modelops.core.rollout import Rollout
from modelops.core.schema import DEMO_SCHEMA, Schema
from modelops.core.timestamps import ISO_UTC
from modelops.web.metrics import LATENCY_BUCKETS
from modelops.web.metrics import metrics as metrics_page

STATE_TTL_SECONDS = 1.0
MIRROR_QUEUE = 64
MIRROR_THREADS = 2
DIFFERENCE_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0)


class RolloutMetrics:
    """Label values are bounded: ``label`` stable|canary, ``path`` user|shadow, one ``version`` per rollout."""

    def __init__(self, registry: CollectorRegistry):
        self.requests = Counter(rollout.REQUESTS, "Predict calls during a rollout, by label, version, path, outcome.",
                                ["label", "version", "path", "outcome"], registry=registry)
        self.rows_total = Counter(rollout.ROWS, "Rows in predict calls during a rollout, by label, version, path, "
                                  "outcome.", ["label", "version", "path", "outcome"], registry=registry)
        self.latency = Histogram(rollout.LATENCY, "Time TF Serving took to answer a predict during a rollout.",
                                 ["label", "version", "path"], buckets=LATENCY_BUCKETS, registry=registry)
        self.rows = Counter(rollout.SHADOW_ROWS, "Mirrored rows whose predicted class agrees with the champion's.",
                            ["version", "result"], registry=registry)
        self.difference = Histogram("modelops_frontend_shadow_abs_difference",
                                    "Largest difference of candidate and champion class probabilities, per row.",
                                    ["version"], buckets=DIFFERENCE_BUCKETS, registry=registry)
        self.dropped = Counter("modelops_frontend_shadow_dropped_total",
                               "Mirrors dropped because the mirror queue was full.", ["version"], registry=registry)


class Router:
    """The rollout in progress, from the history file; re-read only when the file changed.

    While a rollout is known, the file is checked at most every ``ttl`` seconds. Outside one it is
    checked on every call (one stat): a rollout's start record is written before its candidate is
    published, so no request after the publish can take the candidate for "the highest version".
    """

    def __init__(self, history_path: Path, ttl: float = STATE_TTL_SECONDS):
        self.path, self.ttl = Path(history_path), ttl
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._stamp: tuple | None = None
        self._state: Rollout | None = None
        self.settled: int | None = None  # after a rollout: the version users stay on

    def current(self, fresh: bool = False) -> Rollout | None:
        if not fresh and self._state is not None and time.monotonic() - self._checked < self.ttl:
            return self._state
        with self._lock:
            try:
                st = os.stat(self.path)
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            except OSError:
                stamp = None
            if stamp != self._stamp:
                records = history.read(self.path) if stamp else []
                self._state, self.settled = rollout.state(records), rollout.settled(records)
                self._stamp = stamp
            self._checked = time.monotonic()
            return self._state


def in_canary(client_key: str, rollout_: Rollout, percent: float) -> bool:
    """Sticky: the same client gets the same answer for the whole rollout."""
    digest = hashlib.blake2b(f"{rollout_.candidate}:{client_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 10_000 < percent * 100


class Traffic:
    """Answers predict requests as the rollout says; ``client`` serves users, ``mirror_client`` mirrors."""

    def __init__(self, cfg: RolloutConfig, history_path: Path, client, mirror_client, metrics: RolloutMetrics,
                 rng=random.random, schema: Schema = DEMO_SCHEMA, schema_for=None):
        self.cfg, self.client, self.metrics, self.rng = cfg, client, metrics, rng
        self.router = Router(history_path)
        self.mirror = Mirror(mirror_client, metrics, schema, schema_for=schema_for)
        self.proxies = [ipaddress.ip_network(p, strict=False) for p in cfg.trusted_proxies]

    def client_key(self, claimed: str | None, remote_addr: str | None) -> str:
        """Who the client is for the canary: a trusted proxy's ``X-Client-Id``, else the connection's address."""
        remote = remote_addr or ""
        if claimed and self.proxies:
            try:
                address = ipaddress.ip_address(remote)
            except ValueError:
                return remote
            if any(address in network for network in self.proxies):
                return claimed
        return remote

    def current(self) -> Rollout | None:
        return None if self.cfg.mode == "direct" else self.router.current()

    def answer(self, rows: list, client_key: str, prepare=None) -> tuple[int, list, str | None]:
        """``(version, predictions, label)``; label is None outside a rollout. ``prepare(version)``, when
        given, makes the rows for the version a request is routed to (each version checks its own schema)."""
        prepare = prepare or (lambda _version: rows)
        current = self.current()
        if current is None and self.router.settled is None:
            return (*self.client.predict_latest(rows, prepare), None)
        try:
            return self._answer(current, prepare, client_key)
        except ServingHTTPError as exc:
            if exc.status != 404:
                raise
        current = self.router.current(fresh=True)  # that version went away: the rollout moved on
        return self._answer(current, prepare, client_key)

    def _answer(self, current: Rollout | None, prepare, client_key: str) -> tuple[int, list, str | None]:
        if current is None:  # a rollout just ended: the other version may still be loaded for a poll
            settled = self.router.settled
            if settled is None:
                return (*self.client.predict_latest([], prepare), None)
            return settled, self.client.predict(prepare(settled), settled), None
        canary = (current.phase == "canary" and in_canary(client_key, current, self.cfg.canary_percent))
        label, version = ("canary", current.candidate) if canary else ("stable", current.stable)
        rows = prepare(version)
        predictions = timed_predict(self.client, self.metrics, rows, version, label, "user")
        if current.phase == "shadow" and self.rng() < self.cfg.shadow_fraction:
            self._mirror(predictions, current.candidate, prepare, current.stable)
        return version, predictions, label

    def _mirror(self, predictions: list, candidate: int, prepare, stable: int) -> None:
        """Mirror the user's rows as the candidate's schema reads them; rows it cannot take are not mirrored."""
        try:
            mirrored = prepare(candidate)
        except (ValueError, ServingError):  # InputError is a ValueError: the candidate's schema refuses them
            self.metrics.requests.labels("canary", str(candidate), "shadow", "error").inc()
            return
        self.mirror.submit(mirrored, predictions, candidate, stable)


def timed_predict(client, metrics: RolloutMetrics, rows: list, version: int, label: str, path: str) -> list:
    """``client.predict`` with its outcome and latency recorded under ``label``/``version``/``path``."""
    started = time.perf_counter()
    try:
        predictions = client.predict(rows, version)
    except ServingHTTPError as exc:
        if exc.status != 404:  # 404: the version went away mid-move; the caller retries elsewhere
            metrics.requests.labels(label, str(version), path, "error").inc()
            metrics.rows_total.labels(label, str(version), path, "error").inc(len(rows))
        raise
    except ServingError:
        metrics.requests.labels(label, str(version), path, "error").inc()
        metrics.rows_total.labels(label, str(version), path, "error").inc(len(rows))
        raise
    metrics.latency.labels(label, str(version), path).observe(time.perf_counter() - started)
    metrics.requests.labels(label, str(version), path, "ok").inc()
    metrics.rows_total.labels(label, str(version), path, "ok").inc(len(rows))
    return predictions


class Mirror:
    """A bounded queue and a few daemon threads (started lazily, so after gunicorn's fork)."""

    def __init__(self, client, metrics: RolloutMetrics, schema: Schema = DEMO_SCHEMA, size: int = MIRROR_QUEUE,
                 threads: int = MIRROR_THREADS, schema_for=None):
        self.client, self.metrics, self.schema, self.threads = client, metrics, schema, threads
        self.schema_for = schema_for  # version -> the schema it was trained on (web/served.py)
        self.queue: queue.Queue = queue.Queue(maxsize=size)
        self._pid: int | None = None
        self._lock = threading.Lock()

    def submit(self, rows: list, answers: list, candidate: int, stable: int | None = None) -> None:
        if self._pid != os.getpid():
            self._start()
        try:
            self.queue.put_nowait((rows, answers, candidate, stable))
        except queue.Full:
            self.metrics.dropped.labels(str(candidate)).inc()

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            for i in range(self.threads):
                threading.Thread(target=self._work, name=f"shadow-mirror-{i}", daemon=True).start()
            self._pid = os.getpid()

    def _work(self) -> None:
        while True:
            rows, answers, candidate, stable = self.queue.get()
            try:
                self.compare(rows, answers, candidate, stable)
            except Exception:  # noqa: BLE001 (a mirror must never take its thread down)
                self.metrics.requests.labels("canary", str(candidate), "shadow", "error").inc()
            finally:
                self.queue.task_done()

    def compare(self, rows: list, answers: list, candidate: int, stable: int | None = None) -> None:
        """Ask the candidate the user's question and record how its answers compare; each answer is
        read with its own version's schema when the versions' schemas are known (``schema_for``)."""
        ours_schema, theirs_schema = self.schema, self.schema
        if self.schema_for is not None:
            theirs_schema = self.schema_for(candidate)
            ours_schema = self.schema_for(stable) if stable is not None else theirs_schema
        try:
            mirrored = timed_predict(self.client, self.metrics, rows, candidate, "canary", "shadow")
        except ServingError:
            return
        version = str(candidate)
        if len(mirrored) != len(answers):
            self.metrics.rows.labels(version, "disagree").inc(len(answers))
            return
        for ours, theirs in zip(answers, mirrored, strict=True):
            try:
                a, b = predictions.read(ours, ours_schema), predictions.read(theirs, theirs_schema)
            except ServingHTTPError:  # not a prediction of this schema: no agreement
                self.metrics.rows.labels(version, "disagree").inc()
                continue
            same = a.name(ours_schema) == b.name(theirs_schema)  # by class name: the class lists may differ
            self.metrics.rows.labels(version, "agree" if same else "disagree").inc()
            if len(a.probabilities) == len(b.probabilities):
                self.metrics.difference.labels(version).observe(predictions.difference(a, b))


def page_context(current: Rollout | None, cfg: RolloutConfig) -> dict | None:
    """The model page's rollout card: phase, versions and the live comparison this frontend measured."""
    if current is None:
        return None
    live = None
    if current.phase != "loading":
        evidence = rollout.evidence([metrics_page().get_data(as_text=True)], current)
        live = rollout.describe(evidence, current.phase)
    return {"stable": current.stable, "candidate": current.candidate, "phase": current.phase,
            "since": time.strftime(ISO_UTC, time.gmtime(current.since)), "mode": cfg.mode,
            "canary_percent": cfg.canary_percent, "shadow_fraction": cfg.shadow_fraction, "live": live}
