"""The column-by-column reader of file scoring says exactly what the per-row parser says: the same
serving values and, for a bad row, the same words (its first bad feature in schema order)."""

from __future__ import annotations

import math
import random

from modelops.core import batch_score
from modelops.core.errors import SchemaValueError
from modelops.core.schema import DEMO_SCHEMA, Schema
from tests.core.test_schema import PENGUINS, SPECIES

NAMED = Schema.from_config(PENGUINS, SPECIES)
CELLS = {  # per feature: good cells, then cells each refused or read in a way of its own
    "island": ["Biscoe", "Dream", "Torgersen", " Dream ", "", "NA", "Atlantis", "dream"],
    "bill_length_mm": ["39.1", "20", "70", " 45 ", "", "NA", "NaN", "nan", "inf", "19.9", "abc", "1_0e1", "1e39"],
    "flipper_length_mm": ["190", "150", "250.0", "190.5", "", "249", "251", "x", "2e2"],
    "sex": ["male", "female", "", "null", "anything", "  "],
    "x1": ["1.5", "-3", "", "abc", "inf", "NaN", "3.5e38", "1e-300", "0x10"],
}


def per_row(reader: batch_score.RowReader, row: list[str]):
    """The reference the column reader must match: ``(instance, None)`` for a good row as ``/predict``'s
    ``instances`` take it (``Schema.parse_row``), ``(None, error)`` for a bad one."""
    error = reader._width_error(row)
    if error:
        return None, error
    schema = reader.schema
    try:
        typed = schema.parse_row({f.name: row[i] for f, i in zip(schema.features, reader.columns, strict=True)})
    except SchemaValueError as exc:
        return None, str(exc)
    return schema.instance_for_serving(typed), None


def _same(value, other) -> bool:
    return value == other or (isinstance(value, float) and math.isnan(value) and math.isnan(other))


def _check(schema: Schema, header: list[str], rows: list[list[str]]) -> int:
    reader = batch_score.RowReader(schema, header)
    inputs, errors = reader.chunk(rows)
    singles = [per_row(reader, row) for row in rows]
    assert errors == [error for _instance, error in singles]
    good = [instance for instance, error in singles if error is None]
    if not good:
        assert inputs is None  # nothing goes to serving
    elif schema.packed:
        assert inputs == good
    else:
        for name in schema.names:
            assert all(map(_same, inputs[name], [instance[name] for instance in good]))
    return len(good)


def test_named_columns_match_the_per_row_parser_cell_for_cell():
    rng = random.Random(31)
    header = ["note", "sex", "flipper_length_mm", "island", "bill_length_mm"]
    for clean in (0.3, 0.9, 1.0):  # mostly bad, mostly good, all good (the fast path alone)
        rows = [[str(i), *(rng.choice(CELLS[name][:3] if rng.random() < clean else CELLS[name])
                           for name in header[1:])] for i in range(400)]
        good = _check(NAMED, header, rows)
        assert good > 0 and (clean < 1.0 or good == len(rows))


def test_packed_columns_match_and_rows_of_the_wrong_width_are_marked_in_place():
    rng = random.Random(7)
    rows = [[str(i), rng.choice(CELLS["x1"]), rng.choice(CELLS["x1"][:2])] for i in range(300)]
    rows[5], rows[9] = ["a", "1"], ["b", "1", "2", "3"]
    assert _check(DEMO_SCHEMA, ["id", "x1", "x2"], rows) > 0
    _inputs, errors = batch_score.RowReader(DEMO_SCHEMA, ["id", "x1", "x2"]).chunk(rows)
    assert "2 values" in errors[5] and "4 values" in errors[9]
    assert _check(DEMO_SCHEMA, ["id", "x1", "x2"], [["a", "x", "1"]]) == 0
