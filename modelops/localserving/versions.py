"""One model's versions on disk -> loaded servables, with TF Serving's version policies and state history.

Only direct children of the base path named by digits are versions; the policy picks the aspired
ones (TF Serving's default ``latest {num_versions: 1}``: the highest). Each poll loads the aspired
versions not loaded yet, and only once one of them is AVAILABLE unloads the others
(availability-preserving), so publishing ``N+1`` swaps in without a gap and deleting ``N+1`` rolls
back by reloading ``N``. A failed load is retried ``max_load_retries`` times (state stays LOADING
meanwhile), then ends as END with its error and is never tried again, while the loaded version
keeps serving.

Readers never take a lock: the poller thread publishes immutable snapshots (a new dict each
time) and a request keeps the servable it looked up, so an unload never breaks it midway.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from modelops.core.errors import ServableError
from modelops.localserving.model_config import LATEST, VersionPolicy
from modelops.localserving.monitoring import Metrics
from modelops.savedmodel import Servable, load_servable

logger = logging.getLogger("modelops.localserving")

_VERSION_NAME = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class VersionStatus:
    """One row of GetModelStatus: ``state`` is a ModelVersionStatus.State name."""

    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""


class VersionManager:
    """Polls ``base_path`` and keeps the versions its policy aspires loaded; answers lookups and status."""

    def __init__(self, name: str, base_path: Path, metrics: Metrics, max_load_retries: int, retry_interval: float,
                 session_config: tf.compat.v1.ConfigProto | None = None, policy: VersionPolicy = LATEST):
        self.name = name
        self.base_path = base_path
        self.policy = policy
        self._session_config = session_config
        self._metrics = metrics
        self._max_load_retries = max_load_retries
        self._retry_interval = retry_interval
        self._serving: tuple[dict[int, Servable], Servable | None] = ({}, None)  # (by version, latest)
        self._statuses: dict[int, VersionStatus] = {}
        self._retries: dict[int, tuple[int, float, ServableError]] = {}  # version -> (attempts, next try, error)

    # -- lookups (request threads) --------------------------------------------------------------

    def servable(self, version: int | None = None) -> Servable:
        """The servable a request means: latest AVAILABLE, or a specific loaded version."""
        by_version, latest = self._serving
        found = latest if version is None else by_version.get(version)
        if found is None:
            request = f"Latest({self.name})" if version is None else f"Specific({self.name}, {version})"
            raise ServableError("NOT_FOUND", f"Servable not found for request: {request}")
        return found

    def ready(self) -> bool:
        """Some version is AVAILABLE."""
        return self._serving[1] is not None

    def is_available(self, version: int) -> bool:
        return version in self._serving[0]

    def status(self, version: int | None = None) -> list[VersionStatus]:
        """Every version ever aspired, highest first; unloaded and failed ones stay as END."""
        statuses = self._statuses
        if not statuses:
            raise ServableError("NOT_FOUND", f"Could not find any versions of model {self.name}")
        if version is None:
            return [statuses[v] for v in sorted(statuses, reverse=True)]
        if version not in statuses:
            raise ServableError("NOT_FOUND", f"Could not find version {version} of model {self.name}")
        return [statuses[version]]

    def startup_failure(self) -> str | None:
        """Why this model cannot start (no version loaded, every aspired one failed), else None."""
        if self._serving[1] is not None:
            return None
        failed = {v: s for v, s in self._statuses.items() if s.state == "END" and s.error_code != "OK"}
        if not failed or self._retries:
            return None
        return ", ".join(f"{{name: {self.name} version: {v}}}: {s.error_message}" for v, s in failed.items())

    # -- polling (one thread) -------------------------------------------------------------------

    def poll(self) -> None:
        """One pass: load the aspired versions not loaded yet; once one is AVAILABLE, unload the rest."""
        on_disk = self._scan()
        if not on_disk:
            logger.warning(
                "No versions of servable %s found under base path %s. Did you forget to name your leaf "
                "directory as a number (eg. '/1/')?",
                self.name,
                self.base_path,
            )
        aspired = self.policy.aspired(set(on_disk))
        for version in [v for v in self._retries if v not in aspired]:  # no longer aspired: give up on it
            self._set(version, "END", self._retries.pop(version)[2])
        for version in sorted(aspired, reverse=True):
            if version not in self._serving[0] and self._due(version):
                self._load(version, on_disk[version])
        if not aspired or aspired & self._serving[0].keys():
            self._unload_all_but(aspired)

    def unload_all(self) -> None:
        """The model left the config: every version ends (its history stays for status)."""
        self._retries.clear()
        self._unload_all_but(set())

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
        if servable.warmup_records:
            logger.info("Finished reading warmup data for model at %s. Number of warmup records read: %d.",
                        path, servable.warmup_records)
        self._retries.pop(version, None)
        by_version = {**self._serving[0], version: servable}
        self._serving = (by_version, by_version[max(by_version)])
        self._set(version, "AVAILABLE")
        logger.info("Successfully loaded servable version {name: %s version: %d}", self.name, version)

    def _unload_all_but(self, keep: set[int]) -> None:
        by_version = self._serving[0]
        if not by_version.keys() - keep:
            return
        kept = {v: servable for v, servable in by_version.items() if v in keep}
        self._serving = (kept, kept[max(kept)] if kept else None)
        for version in by_version.keys() - keep:
            self._set(version, "END")
            logger.info("Successfully unloaded servable version {name: %s version: %d}", self.name, version)

    def _set(self, version: int, state: str, error: ServableError | None = None) -> None:
        status = VersionStatus(version, state, *((error.code, error.message) if error else ()))
        self._statuses = {**self._statuses, version: status}  # copy-on-write: readers never lock
