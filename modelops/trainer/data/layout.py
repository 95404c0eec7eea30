"""Where the data lives under ``data_dir``, and how a moved file keeps every earlier one."""

from __future__ import annotations

import os
from pathlib import Path

from modelops.core.config import Config


def incoming_dir(config: Config) -> Path:
    return config.data_dir / "incoming"


def accepted_dir(config: Config) -> Path:
    return config.data_dir / "accepted"


def quarantine_dir(config: Config) -> Path:
    return config.data_dir / "quarantine"


def cache_dir(config: Config) -> Path:
    return config.data_dir / "cache"


def free_name(directory: Path, name: str) -> Path:
    """A path in ``directory`` for ``name`` that does not overwrite an earlier batch (or a link)."""
    target = directory / name
    stem, suffix = os.path.splitext(name)
    n = 1
    while os.path.lexists(target):
        target = directory / f"{stem}.{n}{suffix}"
        n += 1
    return target
