"""Versions on disk -> loaded servables, with TF Serving's ``latest`` policy and state history.

Only direct children of the base path named by digits are versions; the highest is aspired
(TF Serving's default ``latest {num_versions: 1}``). Each poll loads the aspired version if it is
not loaded yet, and only once it is AVAILABLE unloads the others (availability-preserving), so
publishing ``N+1`` swaps in without a gap and deleting ``N+1`` rolls back by reloading ``N``.
A failed load is retried ``max_load_retries`` times (state stays LOADING meanwhile), then ends
as END with its error and is never tried again, while the loaded version keeps serving.

Readers never take a lock: the poller thread publishes immutable snapshots (a new dict each
time) and a request keeps the servable it looked up, so an unload never breaks it midway.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from modelops.errors import ServableError
from modelops.savedmodel import Servable, load_servable
from modelops.serving.monitoring import Metrics

logger = logging.getLogger("modelops.serving")

_VERSION_NAME = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class VersionStatus:
    """One row of GetModelStatus: ``state`` is a ModelVersionStatus.State name."""

    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""


class VersionManager:
    """Polls ``base_path`` and keeps the aspired version loaded; answers lookups and status."""

    def __init__(self, name: str, base_path: Path, metrics: Metrics, max_load_retries: int, retry_interval: float,
                 session_config: tf.compat.v1.ConfigProto | None = None):
        self.name = name
        self._session_config = session_config
        self.base_path = base_path
        self._metrics = metrics
        self._max_load_retries = max_load_retries
        self._retry_interval = retry_interval
        self._serving: tuple[dict[int, Servable], Servable | None] = ({}, None)  # (by version, latest)
        self._statuses: dict[int, VersionStatus] = {}
        self._retries: dict[int, tuple[int, float, ServableError]] = {}  # version -> (attempts, next try, error)
        self._stop = threading.Event()

    # -- lookups (request threads) --------------------------------------------------------------

    def servable(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable a request means: latest AVAILABLE, or a specific loaded version."""
        if label is not None:
            raise ServableError("INVALID_ARGUMENT", f"Unrecognized servable version label: {label}")
        by_version, latest = self._serving
        if name == self.name:
            found = latest if version is None else by_version.get(version)
            if found is not None:
                return found
        request = f"Latest({name})" if version is None else f"Specific({name}, {version})"
        raise ServableError("NOT_FOUND", f"Servable not found for request: {request}")

    def status(self, name: str, version: int | None = None) -> list[VersionStatus]:
        """Every version ever aspired, highest first; unloaded and failed ones stay as END."""
        statuses = self._statuses
        if name != self.name or not statuses:
            raise ServableError("NOT_FOUND", f"Could not find any versions of model {name}")
        if version is None:
            return [statuses[v] for v in sorted(statuses, reverse=True)]
        if version not in statuses:
            raise ServableError("NOT_FOUND", f"Could not find version {version} of model {name}")
        return [statuses[version]]

    # -- polling (one thread) -------------------------------------------------------------------

    def wait_until_available(self, poll_seconds: float) -> None:
        """Block until a first version is AVAILABLE, as TF Serving does before opening its ports."""
        while True:
            self.poll()
            if self._serving[1] is not None:
                return
            failed = {v: s for v, s in self._statuses.items() if s.state == "END" and s.error_code != "OK"}
            if failed:
                reasons = ", ".join(f"{{name: {self.name} version: {v}}}: {s.error_message}" for v, s in failed.items())
                raise ServableError("UNKNOWN", f"1 model(s) did not become available: {{{reasons}}}")
            time.sleep(max(poll_seconds, 0.1))

    def start_polling(self, poll_seconds: float) -> threading.Thread:
        """Poll every ``poll_seconds`` in a daemon thread (TF Serving: 0 means never again)."""

        def loop() -> None:
            while not self._stop.wait(poll_seconds):
                try:
                    self.poll()
                except Exception:  # the poller must outlive any surprise on disk
                    logger.exception("Polling %s failed", self.base_path)

        thread = threading.Thread(target=loop, name="version-poller", daemon=True)
        if poll_seconds > 0:
            thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def poll(self) -> None:
        """One pass: load the aspired (highest) version if needed, then unload every other one."""
        on_disk = self._scan()
        if not on_disk:
            logger.warning(
                "No versions of servable %s found under base path %s. Did you forget to name your leaf "
                "directory as a number (eg. '/1/')?",
                self.name,
                self.base_path,
            )
            self._unload_all_but(None)
            return
        aspired = max(on_disk)
        for version in [v for v in self._retries if v != aspired]:  # no longer aspired: give up on it
            self._set(version, "END", self._retries.pop(version)[2])
        if aspired not in self._serving[0] and self._due(aspired):
            self._load(aspired, on_disk[aspired])
        if aspired in self._serving[0]:
            self._unload_all_but(aspired)

    def _scan(self) -> dict[int, Path]:
        try:
            entries = list(os.scandir(self.base_path))
        except OSError:
            logger.warning("Could not find base path %s for servable %s", self.base_path, self.name)
            return {}
        found: dict[int, Path] = {}
        for entry in sorted(entries, key=lambda e: e.name):
            if _VERSION_NAME.fullmatch(entry.name) and entry.is_dir():
                found.setdefault(int(entry.name), Path(entry.path))
        return found

    def _due(self, version: int) -> bool:
        """Not failed for good, and not waiting out a retry interval."""
        if version in self._retries:
            return time.monotonic() >= self._retries[version][1]
        status = self._statuses.get(version)
        return status is None or status.error_code == "OK"

    def _load(self, version: int, path: Path) -> None:
        self._set(version, "LOADING")
        try:
            servable = load_servable(version, path, self._session_config)
        except ServableError as error:
            self._metrics.load_attempt(str(path), success=False)
            attempts = self._retries.get(version, (0, 0.0, error))[0] + 1
            if attempts > self._max_load_retries:
                self._retries.pop(version, None)
                self._set(version, "END", error)
                logger.error("Loading servable version {name: %s version: %d} failed: %s", self.name, version, error)
            else:
                self._retries[version] = (attempts, time.monotonic() + self._retry_interval, error)
                logger.warning(
                    "Loading servable version %d failed (attempt %d), will retry: %s", version, attempts, error
                )
            return
        self._metrics.load_attempt(str(path), success=True)
        self._retries.pop(version, None)
        by_version = {**self._serving[0], version: servable}
        self._serving = (by_version, by_version[max(by_version)])
        self._set(version, "AVAILABLE")
        logger.info("Successfully loaded servable version {name: %s version: %d}", self.name, version)

    def _unload_all_but(self, keep: int | None) -> None:
        by_version = self._serving[0]
        if not any(v != keep for v in by_version):
            return
        kept = {keep: by_version[keep]} if keep is not None else {}
        self._serving = (kept, kept.get(keep))
        for version in by_version:
            if version != keep:
                self._set(version, "END")
                logger.info("Successfully unloaded servable version {name: %s version: %d}", self.name, version)

    def _set(self, version: int, state: str, error: ServableError | None = None) -> None:
        status = VersionStatus(version, state, *((error.code, error.message) if error else ()))
        self._statuses = {**self._statuses, version: status}  # copy-on-write: readers never lock
