"""Is there anything new to train on? A run whose data, schema and training settings are those the
served version was trained with would train the same model again (same seed, same rows) and, if the
gate passed it, publish a copy under a new number. Such a run publishes nothing and records
``up-to-date``; ``retrain --force`` trains anyway (a changed code or library version, say)."""

from __future__ import annotations

import dataclasses

from modelops.core.config import Config
from modelops.core.store import ModelStore
from modelops.trainer.data import tables


def up_to_date(config: Config, store: ModelStore, dataset: tables.Dataset) -> str | None:
    """Why this run has nothing new (naming the served version), or None when it has."""
    served = store.latest()
    if served is None:
        return None
    metrics = store.metrics(served) or {}
    recorded = metrics.get("dataset")
    settings = metrics.get("config")
    if not isinstance(recorded, dict) or not isinstance(settings, dict):
        return None
    same = (recorded.get("fingerprint") == dataset.fingerprint
            and metrics.get("schema") == config.schema.to_config()
            and settings.get("train") == _plain(dataclasses.asdict(config.train))
            and settings.get("gate") == _plain(dataclasses.asdict(config.gate)))
    if not same:
        return None
    return (f"up to date: no new accepted rows since v{served} was trained (data fingerprint "
            f"{dataset.fingerprint}, same schema and train/gate settings); nothing was trained or published "
            "(retrain --force trains anyway)")


def _plain(value):
    """As the value reads back from metrics.json (tuples are lists there)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
