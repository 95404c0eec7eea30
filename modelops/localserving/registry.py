"""The models the server serves (one from ``--model_name``/``--model_base_path``, or every model of a
``--model_config_file``), their version labels, and the threads that keep them current.

A config (re)load realises exactly the new list, as TF Serving does: models left out are unloaded
(their status history stays), new ones start loading, kept ones get the new policy. Labels are
checked like TF Serving checks them: a label may point only at an AVAILABLE version, unless
``--allow_version_labels_for_unavailable_models`` and the label is new; a refused label set
leaves the previous one in force. Requests never take the lock: they read the current dicts,
which writers replace rather than change.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from pathlib import Path
from typing import Any

from modelops.core.errors import ConfigError, ServableError
from modelops.localserving import model_config
from modelops.localserving.model_config import ModelSpec
from modelops.localserving.versions import VersionManager, VersionStatus
from modelops.savedmodel import Servable

logger = logging.getLogger("modelops.localserving")


class ModelRegistry:
    """Lookups by model name, version or label; ``manager_options`` go to each VersionManager."""

    def __init__(self, allow_unavailable_labels: bool = False, **manager_options: Any):
        self._manager_options = manager_options
        self._models: dict[str, VersionManager] = {}
        self._retired: dict[str, VersionManager] = {}  # left the config: answers status only
        self._labels: dict[str, dict[str, int]] = {}
        self._allow_unavailable_labels = allow_unavailable_labels
        self._config_text: str | None = None
        self._lock = threading.Lock()  # one writer at a time (poller, config reload)
        self._stop = threading.Event()

    # -- lookups (request threads) --------------------------------------------------------------

    def servable(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        if label is not None:
            version = self._labels.get(name, {}).get(label)
            if version is None:
                raise ServableError("INVALID_ARGUMENT", f"Unrecognized servable version label: {label}")
        manager = self._models.get(name)
        if manager is None:
            request = f"Latest({name})" if version is None else f"Specific({name}, {version})"
            raise ServableError("NOT_FOUND", f"Servable not found for request: {request}")
        return manager.servable(version)

    def knows(self, name: str) -> bool:
        """Whether ``name`` is a model of this server (configured now, or before a config reload)."""
        return name in self._models or name in self._retired

    def status(self, name: str, version: int | None = None) -> list[VersionStatus]:
        manager = self._models.get(name) or self._retired.get(name)
        if manager is None:
            raise ServableError("NOT_FOUND", f"Could not find any versions of model {name}")
        return manager.status(version)

    # -- configuration (startup, poller threads) ------------------------------------------------

    def start(self, specs: list[ModelSpec], poll_seconds: float) -> None:
        """Load ``specs`` and block until every model has a version AVAILABLE, as TF Serving does
        before it opens a port; then set their labels. Raises ServableError when a model cannot load."""
        self._realise(specs)
        while True:
            failures = [reason for m in self._models.values() if (reason := m.startup_failure())]
            if failures:
                raise ServableError(
                    "UNKNOWN", f"{len(failures)} model(s) did not become available: {{{', '.join(failures)}}}"
                )
            if all(m.ready() for m in self._models.values()):
                break
            time.sleep(max(poll_seconds, 0.1))
            self.poll()
        with self._lock:
            self._set_labels(specs)

    def reload(self, specs: list[ModelSpec]) -> None:
        """Realise a new config now; raises ServableError (FAILED_PRECONDITION) for a refused label."""
        self._realise(specs)
        with self._lock:
            self._set_labels(specs)

    def reload_file(self, path: Path) -> None:
        """Re-read the config file; a changed one is realised, a broken one logged and ignored."""
        try:
            text, specs = model_config.read(path)
            if text == self._config_text:
                return
            self.reload(specs)
        except (ConfigError, ServableError) as e:
            logger.error("Reloading --model_config_file %s failed, keeping the current config: %s", path, e)
            return
        self._config_text = text
        logger.info("Reloaded --model_config_file %s: %s", path, ", ".join(s.name for s in specs) or "no models")

    def remember_config_text(self, text: str) -> None:
        self._config_text = text

    def poll(self) -> None:
        with self._lock:
            for manager in self._models.values():
                manager.poll()

    def start_polling(self, poll_seconds: float, config_file: Path | None, config_poll_seconds: float) -> None:
        """Daemon threads: the model dirs every ``poll_seconds``, the config file every
        ``config_poll_seconds`` (TF Serving: 0 means never again)."""
        jobs = [("version-poller", poll_seconds, self.poll)]
        if config_file is not None:
            jobs.append(("config-poller", config_poll_seconds, functools.partial(self.reload_file, config_file)))
        for name, seconds, job in jobs:
            if seconds > 0:
                threading.Thread(target=self._every, args=(seconds, job), name=name, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _every(self, seconds: float, job) -> None:
        while not self._stop.wait(seconds):
            try:
                job()
            except Exception:  # the poller must outlive any surprise on disk
                logger.exception("%s failed", threading.current_thread().name)

    def _realise(self, specs: list[ModelSpec]) -> None:
        with self._lock:
            models: dict[str, VersionManager] = {}
            for spec in specs:
                manager = self._models.get(spec.name) or self._retired.pop(spec.name, None)
                if manager is not None and manager.base_path != spec.base_path:
                    manager.unload_all()
                    manager = None
                if manager is None:
                    manager = VersionManager(spec.name, spec.base_path, **self._manager_options)
                manager.policy = spec.policy
                models[spec.name] = manager
            for name, manager in self._models.items():
                if name not in models:
                    manager.unload_all()
                    self._retired[name] = manager
            self._models = models
            for manager in models.values():
                manager.poll()

    def _set_labels(self, specs: list[ModelSpec]) -> None:
        """Caller holds the lock. All or nothing, as TF Serving's UpdateModelVersionLabelMap."""
        labels: dict[str, dict[str, int]] = {}
        for spec in specs:
            current = self._labels.get(spec.name, {})
            for label, version in spec.labels.items():
                checked = label in current or not self._allow_unavailable_labels
                if checked and not self._models[spec.name].is_available(version):
                    raise ServableError(
                        "FAILED_PRECONDITION",
                        f"Request to assign label to version {version} of model {spec.name}, which is not "
                        "currently available for inference",
                    )
            labels[spec.name] = dict(spec.labels)
        self._labels = labels
