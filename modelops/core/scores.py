"""How a version's recorded score is named: by the ``gate.metric`` it was gated on, never as "accuracy"
when it is another metric; the plain accuracy is shown beside it when the run recorded one."""

from __future__ import annotations

from typing import Any

LABELS = {"accuracy": "Accuracy", "balanced_accuracy": "Balanced accuracy", "macro_f1": "Macro F1"}


def label(metric: str) -> str:
    """``balanced_accuracy`` as ``Balanced accuracy``; an unknown metric by its own name."""
    return LABELS.get(metric, metric.replace("_", " ").capitalize())


def headline(metrics: dict[str, Any] | None) -> list[tuple[str, float]]:
    """``[(name, percent)]`` for a version's metrics.json: the gated score under its metric's name, then
    the accuracy when the gate used another metric; empty when nothing usable was recorded."""
    found = metrics if isinstance(metrics, dict) else {}
    score = found.get("test_accuracy_percent")  # the gate.metric's score, under its historical key
    if not _number(score):
        return []
    gate = found.get("gate")
    metric = gate.get("metric") if isinstance(gate, dict) and isinstance(gate.get("metric"), str) else "accuracy"
    shown = [(label(metric), float(score))]
    scores = found.get("scores_percent")
    accuracy = scores.get("accuracy") if isinstance(scores, dict) else None
    if metric != "accuracy" and _number(accuracy):
        shown.append((label("accuracy"), float(accuracy)))
    return shown


def text(metrics: dict[str, Any] | None) -> str:
    """``Balanced accuracy 65.97% (accuracy 71.64%)``; ``score unknown`` when none was recorded."""
    shown = headline(metrics)
    if not shown:
        return "score unknown"
    first = f"{shown[0][0]} {shown[0][1]:.2f}%"
    return first + "".join(f" ({name.lower()} {value:.2f}%)" for name, value in shown[1:])


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
