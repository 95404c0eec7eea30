"""The training data in memory, and its rows by feature name.

A batch is two matrices: numbers (float32, the numeric features in order, NaN for a missing
value, then the label's class index) and text (the category features, "" for missing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from modelops.core.schema import Schema


def no_text(rows: int) -> np.ndarray:
    """The text matrix of a table without category features."""
    return np.empty((rows, 0), dtype=np.str_)


@dataclass(frozen=True)
class Batch:
    """One batch's rows: ``numbers`` float32 [n, numeric features + 1] (class index last), ``text`` str
    [n, category features]; ``ignored``: header columns the schema does not declare."""

    numbers: np.ndarray
    text: np.ndarray
    ignored: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.numbers)


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray  # float32, shape [n, numeric features] (NaN = missing); no two rows (with their label) alike
    y: np.ndarray  # float32, shape [n]: the class index (the demo: 0.0 / 1.0)
    fingerprint: str
    files: tuple[str, ...]  # the batches in the window
    left_out: tuple[str, ...] = ()  # accepted batches outside the window
    duplicates: int = 0  # rows dropped as copies of another row
    text: np.ndarray | None = None  # str, shape [n, category features] ("" = missing); None: there are none

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray
    text_train: np.ndarray | None = None
    text_eval: np.ndarray | None = None


def columns(schema: Schema, x: np.ndarray, text: np.ndarray | None) -> dict[str, np.ndarray]:
    """The rows as one column per feature, by name: float32, or str for categories (the named signature's inputs)."""
    text = no_text(len(x)) if text is None else text
    numeric = {f.name: np.asarray(x[:, i], dtype=np.float32) for i, f in enumerate(schema.numeric)}
    category = {f.name: np.asarray(text[:, i]) for i, f in enumerate(schema.categories)}
    return {name: numeric[name] if name in numeric else category[name] for name in schema.names}


def relayout(rows: Schema, target: Schema, x: np.ndarray, text: np.ndarray | None,
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows read with ``rows`` in the layout of ``target`` (a served model's own schema, whose features
    the rows hold: ``Schema.scoring_gap``): its numeric features, then its categories."""
    by_name = columns(rows, x, text)
    numbers = np.empty((len(x), 0), dtype=np.float32)
    if target.numeric:
        numbers = np.column_stack([by_name[f.name] for f in target.numeric]).astype(np.float32)
    texts = np.column_stack([by_name[f.name] for f in target.categories]) if target.categories else None
    return numbers, texts


def typed_rows(schema: Schema, x: np.ndarray, text: np.ndarray | None) -> list[dict[str, float | str | None]]:
    """The rows as typed values by feature name, None for missing (``Schema.instance_for_serving`` spells them)."""
    by_name = columns(schema, x, text)
    return [{f.name: _typed(f.numeric, by_name[f.name][i]) for f in schema.features} for i in range(len(x))]


def _typed(numeric: bool, value) -> float | str | None:
    if numeric:
        return None if math.isnan(value) else float(value)
    return str(value) or None
