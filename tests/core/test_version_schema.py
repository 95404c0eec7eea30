"""A version's schema is read one way for the frontend and file scoring: its metrics.json's record,
config.json's schema only when the version has no record here, and a damaged record refused."""

from __future__ import annotations

import json

import pytest

from modelops.core import batch_score, version_schema
from modelops.core.schema import DEMO_SCHEMA, Schema
from modelops.core.version_schema import SchemaUnreadable
from tests.core.test_schema import PENGUINS, SPECIES

NAMED = Schema.from_config(PENGUINS, SPECIES)


def _version(models, version: int, metrics: str | None):
    (models / str(version)).mkdir(parents=True)
    if metrics is not None:
        (models / str(version) / "metrics.json").write_text(metrics)


def test_the_record_wins_and_a_version_without_one_takes_config_json_s_schema(tmp_path):
    _version(tmp_path, 1, json.dumps({"schema": NAMED.to_config()}))
    _version(tmp_path, 2, None)
    _version(tmp_path, 3, json.dumps({"version": 3}))  # from before schemas were recorded: the demo's
    assert version_schema.recorded(tmp_path, 1) == NAMED
    assert version_schema.recorded(tmp_path, 2) is None
    assert batch_score.schema_of(tmp_path, 1, DEMO_SCHEMA) == NAMED
    assert batch_score.schema_of(tmp_path, 2, NAMED) == NAMED
    assert batch_score.schema_of(tmp_path, 3, NAMED) == DEMO_SCHEMA


@pytest.mark.parametrize(("metrics", "words"), [
    ("{not json", "version 4's metrics.json cannot be read"),
    (json.dumps({"schema": {"features": {"x": {"type": "blob"}}, "label": {"column": "y"}}}),
     "the schema recorded in version 4's metrics.json is not a valid schema"),
])
def test_a_damaged_record_is_refused_never_replaced_by_config_json_s(tmp_path, metrics, words):
    _version(tmp_path, 4, metrics)
    with pytest.raises(SchemaUnreadable, match=words):
        version_schema.recorded(tmp_path, 4)
    with pytest.raises(SchemaUnreadable, match="retrain, or roll back"):
        batch_score.schema_of(tmp_path, 4, DEMO_SCHEMA)
