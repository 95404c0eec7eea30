"""Drift: the reference statistics every version carries, and batches scored against them.

At training time :func:`reference` summarises the training rows per declared feature (numeric:
count, blanks, mean, std, quantile bin edges and the share per bin; category: the share per value,
out-of-vocabulary and missing; a date as days since 1970) and the label's class shares (a number
label: binned like a number feature); it goes into the version's
``metrics.json`` under ``reference``. :func:`score` puts a batch into the same slots and computes
the PSI per feature (``modelops.core.psi``, shared with the frontend's live counting). A feature is
``drifted`` when its score is above ``drift.threshold`` and the batch has at least
``drift.min_rows`` rows (smaller batches are scored but never flagged: their PSI is noise).

A few lines of numpy instead of a monitoring suite (Evidently, TFDV): the bins are stored, so the
score is a sum over at most ``drift.bins`` + 2 slots, and the images stay small.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from modelops.core.moments import as_days
from modelops.core.psi import psi, slot
from modelops.core.schema import Schema
from modelops.trainer.data import tables

MAX_CATEGORIES = 100  # a learned category's most frequent values kept in the reference; the rest count as "other"


@dataclass(frozen=True)
class Table:
    """Rows as one column per feature by name (float with NaN for missing, or str with "" for missing),
    and the label's class index per row."""

    columns: dict[str, np.ndarray]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def table(schema: Schema, x: np.ndarray, y: np.ndarray, text: np.ndarray | None = None) -> Table:
    """A Table from the pipeline's matrices (numeric features in ``x``, categories and dates in ``text``);
    a date counts as days since 1970 (``modelops.core.moments.as_days``), NaN when missing."""
    columns = tables.columns(schema, x, text)
    for f in schema.features:
        if f.temporal:
            columns[f.name] = np.asarray([as_days(v) if v else np.nan for v in columns[f.name].tolist()])
    labels = np.asarray(y, dtype=np.float64) if schema.label.is_number else np.asarray(y).astype(int)
    return Table(columns, labels)


def of_batch(schema: Schema, batch: tables.Batch) -> Table:
    """A Table from one parsed batch (its class index is the last number of each row)."""
    return table(schema, batch.numbers[:, :-1], batch.numbers[:, -1], batch.text)


def reference(schema: Schema, rows: Table, bins: int) -> dict:
    """The reference statistics of ``rows`` (the training rows): small and bounded by ``bins``."""
    features = {f.name: _numeric(rows.columns[f.name], bins) if f.numeric or f.temporal
                else _category(rows.columns[f.name], f.values) for f in schema.features if f.name in rows.columns}
    label = _numeric(rows.labels, bins) if schema.label.is_number else _label(schema, rows.labels)
    return {"rows": len(rows), "bins": bins, "features": features, "label": label}


def _numeric(column: np.ndarray, bins: int) -> dict:
    present = column[~np.isnan(column)]
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])).tolist() if len(present) else []
    feature = {"type": "numeric", "count": int(len(present)), "blanks": int(len(column) - len(present)),
               "mean": round(float(present.mean()), 6) if len(present) else None,
               "std": round(float(present.std()), 6) if len(present) else None,
               "edges": [round(e, 6) for e in edges], "shares": [0.0] * (len(edges) + 2)}
    feature["shares"] = _shares(counts(feature, column))
    return feature


def _category(column: np.ndarray, declared: tuple[str, ...] | None) -> dict:
    present = column[column != ""]
    values = list(declared) if declared else [v for v, _ in Counter(present.tolist()).most_common(MAX_CATEGORIES)]
    feature = {"type": "category", "count": int(len(present)), "blanks": int(len(column) - len(present)),
               "values": values, "shares": [0.0] * (len(values) + 2)}
    feature["shares"] = _shares(counts(feature, column))
    return feature


def _label(schema: Schema, labels: np.ndarray) -> dict:
    classes = list(schema.label.class_names)
    return {"classes": classes, "shares": _shares(np.bincount(labels, minlength=len(classes)).tolist())}


def counts(feature: dict, column: np.ndarray) -> list[int]:
    """How many values of ``column`` fall into each of ``feature``'s slots (``modelops.core.psi.slot``, vectorised)."""
    size = len(feature["shares"])
    if feature["type"] == "numeric":
        missing = np.isnan(column)
        slots = np.where(missing, size - 1, np.searchsorted(np.asarray(feature["edges"]), column, side="right"))
    else:
        slots = np.fromiter((slot(feature, v) for v in column.tolist()), dtype=int, count=len(column))
    return np.bincount(slots.astype(int), minlength=size).tolist()


def _shares(found: list[int]) -> list[float]:
    total = sum(found)
    return [round(c / total, 6) if total else 0.0 for c in found]


def score(ref: dict, rows: Table, threshold: float, min_rows: int) -> dict:
    """``{"rows": n, "features": {name: {"score", "drifted"}}, "label": {"score", "drifted", "shares"}}``
    for ``rows`` against the reference ``ref``; features the reference does not know are left out."""
    flaggable = len(rows) >= min_rows

    def judged(value: float) -> dict:
        return {"score": value, "drifted": flaggable and value > threshold}

    features = {name: judged(psi(feature["shares"], counts(feature, rows.columns[name])))
                for name, feature in ref.get("features", {}).items() if name in rows.columns}
    label = ref.get("label") or {}
    if label.get("type") == "numeric":  # a number label: its values binned like a number feature
        found = counts(label, np.asarray(rows.labels, dtype=np.float64))
        return {"rows": len(rows), "features": features,
                "label": {**judged(psi(label["shares"], found)), "shares": {}}}
    found = np.bincount(rows.labels.astype(int), minlength=len(label.get("classes", []))).tolist()
    shares = dict(zip(label.get("classes", []), _shares(found), strict=False))
    label_score = psi(label["shares"], found) if label.get("shares") and len(found) == len(label["shares"]) else 0.0
    return {"rows": len(rows), "features": features, "label": {**judged(label_score), "shares": shares}}


def drifted_names(report: dict) -> list[str]:
    return [name for name, f in report.get("features", {}).items() if f.get("drifted")]


def describe(report: dict, threshold: float, min_rows: int) -> str:
    """One line for the run log: which features drifted and by how much."""
    scores = ", ".join(f"{name} {f['score']:.3f}" for name, f in report["features"].items())
    drifted = drifted_names(report)
    if drifted:
        verdict = "DRIFTED: " + ", ".join(f"{n} (PSI {report['features'][n]['score']:.3f} > {threshold:g})"
                                           for n in drifted)
    elif report["rows"] < min_rows:
        verdict = f"not judged ({report['rows']} rows < drift.min_rows {min_rows})"
    else:
        verdict = f"no feature drifted (threshold {threshold:g})"
    return f"{verdict}; PSI per feature: {scores}"

