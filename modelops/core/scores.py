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
    score = _number(found.get("test_accuracy_percent"))  # the gate.metric's score, under its historical key
    if score is None:
        return []
    gate = found.get("gate")
    recorded = gate.get("metric") if isinstance(gate, dict) else None
    metric = recorded if isinstance(recorded, str) else "accuracy"
    shown = [(label(metric), score)]
    scores = found.get("scores_percent")
    accuracy = _number(scores.get("accuracy")) if isinstance(scores, dict) else None
    if metric != "accuracy" and accuracy is not None:
        shown.append((label("accuracy"), accuracy))
    return shown


def text(metrics: dict[str, Any] | None) -> str:
    """``Balanced accuracy 65.97% (accuracy 71.64%)``; ``score unknown`` when none was recorded."""
    shown = headline(metrics)
    if not shown:
        return "score unknown"
    first = f"{shown[0][0]} {shown[0][1]:.2f}%"
    return first + "".join(f" ({name.lower()} {value:.2f}%)" for name, value in shown[1:])


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
