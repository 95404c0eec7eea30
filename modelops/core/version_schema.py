"""The schema a published version takes: the one reading of a version's record, for the frontend
(``web/served.py``) and file scoring (``retrain_pipeline.py score``) alike.

Every version records the schema it was trained on in its ``metrics.json``; that record, not
config.json, is what rows sent to it must match. A version with no ``metrics.json`` visible here
(a frontend without the models volume, a SavedModel copied in by hand) has no record: the caller
uses config.json's schema. A record that is there but damaged is refused (SchemaUnreadable), never
replaced by config.json's guess: scoring a version with the wrong schema would answer wrongly.
"""

from __future__ import annotations

from pathlib import Path

from modelops.core.errors import ServingUnavailable
from modelops.core.schema import DEFAULT_MISSING_VALUES, Schema, recorded_schema
from modelops.core.store import METRICS_FILE, ModelStore


class SchemaUnreadable(ServingUnavailable):
    """A version's recorded schema cannot be read: rows for it cannot be checked."""


def recorded(models_dir: Path, version: int,
             missing_values: tuple[str, ...] = DEFAULT_MISSING_VALUES) -> Schema | None:
    """The schema ``version``'s metrics.json records; None when it has no metrics.json here;
    SchemaUnreadable when the file cannot be read or records no valid schema."""
    store = ModelStore(models_dir)
    metrics = store.metrics(version)
    if metrics is None:
        if not (store.path(version) / METRICS_FILE).exists():
            return None
        raise SchemaUnreadable(f"version {version}'s metrics.json cannot be read, so the schema it takes is "
                               "unknown; retrain, or roll back to a version whose record is intact")
    schema = recorded_schema(metrics, missing_values)
    if schema is None:
        raise SchemaUnreadable(f"the schema recorded in version {version}'s metrics.json is not a valid schema; "
                               "retrain, or roll back to a version whose record is intact")
    return schema
