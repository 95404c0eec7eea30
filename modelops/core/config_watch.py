"""The trainer service sees a changed config.json at its next tick, without a restart.

Compared by text, so any way of saving counts (an editor that writes in place or one that replaces
the file: compose mounts config.json's folder, not the file, for that reason). A change that does
not load (bad JSON, a wrong key, ``MODEL_NAME`` disagreeing) is reported once and the service goes
on with the config it has; fixing the file is picked up the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from modelops.core.config import Config, load_config
from modelops.core.errors import ConfigError
from modelops.core.model_name import served_model_name


class ConfigWatch:
    def __init__(self, path: Path, config: Config, log: Callable[[str], None],
                 environ: Mapping[str, str] | None = None):
        self.path, self.text, self.log, self.environ = path, config.source_text, log, environ
        self._reported: str | None = None  # the text of a change already reported as not loading

    def changed(self) -> Config | None:
        """The new config when the file's text changed and it loads; else None."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = None  # being replaced, or gone: look again at the next tick
        if text is None or text in (self.text, self._reported):
            return None
        try:
            config = load_config(self.path)
            served_model_name(config, self.environ)
        except ConfigError as exc:
            self._reported = text
            self.log(f"{self.path} changed but does not load, so the service keeps the config it has: {exc}")
            return None
        self.text, self._reported = text, None
        return config


def differences(old: Config, new: Config) -> list[str]:
    """The top-level sections (and keys) that changed, for the service's log line."""
    keys = ["model_name", "schema", "gate", "train", "data", "schedule", "verify", "rollout", "reproduce", "drift"]
    return [("features/label" if key == "schema" else key) for key in keys if getattr(old, key) != getattr(new, key)]
