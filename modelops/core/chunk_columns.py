"""A chunk of CSV rows checked column by column and sent in TF Serving's columnar form.

File scoring's hot path (``batch_score.RowReader.chunk``). A number column is converted at C speed
(``float`` over the column, then one finiteness and bounds check); a text column (category, date)
is parsed once per distinct value. Only a column that fails that is read cell by cell with
``Feature.parse``, the one cell parser, so a bad row's error is worded exactly as the ``/predict``
400 words it, and a row's error is its first bad feature in schema order, as ``Schema.parse_row``
says. The good rows go out as ``{"inputs": ...}``: the packed matrix ``[[x1, x2], ...]`` or one list
per named input, which serving parses several times faster than a list of row objects.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

from modelops.core.errors import SchemaValueError
from modelops.core.schema import FLOAT32_MAX, Feature, Schema, serving_value

Column = tuple[list[Any], list[str | None] | None]  # the serving values, and per row its error (None: all good)


class ColumnReader:
    """Reads the schema's features from the CSV columns ``columns`` (their positions, in schema order)."""

    def __init__(self, schema: Schema, columns: Sequence[int]):
        self.schema, self.columns = schema, list(columns)
        self.bounds = [(-FLOAT32_MAX if f.min is None else max(f.min, -FLOAT32_MAX),
                        FLOAT32_MAX if f.max is None else min(f.max, FLOAT32_MAX)) for f in schema.features]

    def read(self, rows: Sequence[Sequence[str]]) -> tuple[Any, list[str | None]]:
        """The columnar ``inputs`` of the good rows (None when there is none) and per row its error or None;
        every row has the header's width."""
        parsed = [self._column(f, bounds, list(map(operator.itemgetter(i), rows)))
                  for f, i, bounds in zip(self.schema.features, self.columns, self.bounds, strict=True)]
        found = [errors for _values, errors in parsed if errors is not None]
        errors: list[str | None] = [None] * len(rows)
        if found:
            errors = [next((e for e in row if e is not None), None) for row in zip(*found, strict=True)]
        good = [i for i, error in enumerate(errors) if error is None]
        if not good:
            return None, errors
        values = [v for v, _errors in parsed]
        if len(good) < len(rows):
            values = [[column[i] for i in good] for column in values]
        if self.schema.packed:
            return list(map(list, zip(*values, strict=True))), errors
        return {f.name: column for f, column in zip(self.schema.features, values, strict=True)}, errors

    @staticmethod
    def _column(feature: Feature, bounds: tuple[float, float], cells: list[str]) -> Column:
        if feature.numeric:
            try:
                values = list(map(float, cells))
            except ValueError:
                return by_value(feature, cells)
            low, high = bounds
            if values and not (math.isfinite(sum(values)) and low <= min(values) and max(values) <= high):
                return by_value(feature, cells)  # NaN, inf or out of bounds somewhere: words it
            if feature.type == "int" and not all(map(float.is_integer, values)):
                return by_value(feature, cells)
            return values, None
        return by_value(feature, cells)


def by_value(feature: Feature, cells: list[str]) -> Column:
    """Each distinct cell through ``Feature.parse`` once: its serving value, or its error for every row with it."""
    known: dict[str, Any] = {}
    bad: dict[str, str] = {}
    for cell in set(cells):
        try:
            known[cell] = serving_value(feature, feature.parse(cell))
        except SchemaValueError as exc:
            bad[cell] = str(exc)
            known[cell] = None
    values = list(map(known.__getitem__, cells))
    return values, [bad.get(cell) for cell in cells] if bad else None

