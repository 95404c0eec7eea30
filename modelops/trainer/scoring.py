"""How well predicted classes match the labels: the gate's metric, its paired comparison, the confusion table.

``gate.metric`` picks what the gate compares: ``accuracy`` (the default), ``balanced_accuracy``
(the mean of the per-class recalls) or ``macro_f1`` (the mean of the per-class F1 scores). On an
imbalanced table the last two do not reward a model that always answers the biggest class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from modelops.core import stats
from modelops.trainer import bootstrap, regression

METRICS = ("accuracy", "balanced_accuracy", "macro_f1")
Classes = Sequence | np.ndarray  # class indexes per row: labels or a model's predictions


def predicted_classes(probabilities: np.ndarray) -> np.ndarray:
    """Class indexes: ``p >= 0.5`` for one column (P of the second class), else the most probable column."""
    if probabilities.ndim == 2 and probabilities.shape[1] > 1:
        return probabilities.argmax(axis=1).astype(np.float32)
    return (probabilities.reshape(-1) >= 0.5).astype(np.float32)


def confusion(predicted: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``[true class, predicted class]`` row counts."""
    table = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(table, (labels.astype(np.int64).reshape(-1), predicted.astype(np.int64).reshape(-1)), 1)
    return table


def scores_percent(table: np.ndarray) -> dict[str, float]:
    """Every metric of a confusion table, in percent. A class absent from the labels counts in no mean
    (its recall is undefined); a class never predicted has an F1 of 0."""
    total = table.sum()
    true, predicted, hits = table.sum(axis=1), table.sum(axis=0), np.diag(table)
    seen = true > 0
    recall = np.divide(hits, true, out=np.zeros(len(hits)), where=seen)
    precision = np.divide(hits, predicted, out=np.zeros(len(hits)), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(len(hits)), where=precision + recall > 0)
    return {
        "accuracy": float(hits.sum() / total * 100.0) if total else 0.0,
        "balanced_accuracy": float(recall[seen].mean() * 100.0) if seen.any() else 0.0,
        "macro_f1": float(f1[seen].mean() * 100.0) if seen.any() else 0.0,
    }


def confusion_record(table: np.ndarray, class_names: tuple[str, ...]) -> dict:
    """The table as metrics.json keeps it for the model page: rows are the true class, columns the predicted."""
    return {"classes": list(class_names), "rows": "true class", "columns": "predicted class",
            "counts": table.tolist()}


def metric_percent(metric: str, y_true: Classes, predicted: Classes) -> float:
    """One metric of predicted class indexes against the labels, in percent (any rows: a slice, a resample);
    a number label's metric (rmse, mae, r2) of predicted values."""
    if metric in regression.METRICS:
        return regression.scores(np.asarray(predicted), np.asarray(y_true))[metric]
    truth, guess = np.asarray(y_true, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    size = int(max(truth.max(initial=0), guess.max(initial=0))) + 1  # a class in neither side counts in no mean
    return scores_percent(confusion(guess, truth, size))[metric]


def paired(metric: str, y_true: Classes, candidate: Classes, champion: Classes) -> stats.Paired:
    """Candidate vs champion on the same rows by ``metric``: the exact McNemar test for accuracy (a
    per-row mean), a seeded paired bootstrap for the others (not a per-row mean), vectorised
    (``modelops.trainer.bootstrap``)."""
    truth = np.asarray(y_true).reshape(-1)
    if metric in regression.METRICS:
        return regression.paired(metric, truth, np.asarray(candidate), np.asarray(champion))
    if metric == "accuracy":
        return stats.mcnemar((np.asarray(candidate) == truth).tolist(), (np.asarray(champion) == truth).tolist())
    return bootstrap.class_metric(metric, truth, np.asarray(candidate), np.asarray(champion))
