"""A version's reference bins and the population stability index (PSI) over them.

No numpy: the trainer scores batches with it and the frontend scores live rows with it, so both put
a value in the same bin, compute the same score and export it the same way (:func:`gauges`). A
reference feature (in ``metrics.json`` under ``reference.features``) has ``shares``: the training
rows' fraction per slot.

- numeric: ``edges`` (interior quantile cut points); slot ``bisect_right(edges, value)``, then one
  slot for missing values;
- category: ``values``; slot = the value's position, then one for values outside them (out of
  vocabulary), then one for missing values.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from prometheus_client.core import GaugeMetricFamily

from modelops.core.moments import as_days

FLOOR = 1e-4  # an empty slot counts as this share: PSI stays finite when a slot is empty on one side


def reference_of(metrics: Any) -> dict[str, Any] | None:
    """The reference stored in a version's metrics.json, or None (a version trained before drift existed)."""
    ref = metrics.get("reference") if isinstance(metrics, dict) else None
    return ref if isinstance(ref, dict) and isinstance(ref.get("features"), dict) else None


def slot(feature: dict[str, Any], value: Any) -> int:
    """The slot of one typed value (None = missing) in ``feature``'s reference layout."""
    shares = feature["shares"]
    if value is None or value == "" or isinstance(value, float) and math.isnan(value):
        return len(shares) - 1
    if feature["type"] == "numeric":  # a date (ISO text) counts as days since 1970, as its reference does
        return bisect_right(feature["edges"], as_days(value) if isinstance(value, str) else float(value))
    values = feature["values"]
    text = str(value)
    return values.index(text) if text in values else len(values)


def psi(expected: Sequence[float], counts: Sequence[float]) -> float:
    """PSI of observed ``counts`` per slot against the ``expected`` shares; 0.0 with nothing observed."""
    total = sum(counts)
    if total <= 0:
        return 0.0
    score = 0.0
    for e, c in zip(expected, counts, strict=True):
        a, e = max(c / total, FLOOR), max(e, FLOOR)
        score += (a - e) * math.log(a / e)
    return round(score, 4)


def gauges(names: tuple[str, str], what: str, features: dict[str, dict[str, Any]]) -> tuple[GaugeMetricFamily, ...]:
    """The score gauge and the drifted (1/0) gauge, by ``feature``, named ``names``, for the ``what`` rows;
    ``features`` by name as :func:`psi` results are reported: ``{"score": s, "drifted": bool}``."""
    score = GaugeMetricFamily(names[0], f"PSI of {what} against the serving version's reference.", labels=["feature"])
    drifted = GaugeMetricFamily(names[1], f"1 if {what} drifted on this feature (drift.threshold, drift.min_rows).",
                                labels=["feature"])
    for name, found in features.items():
        score.add_metric([name], float(found["score"]))
        drifted.add_metric([name], 1.0 if found.get("drifted") is True else 0.0)
    return score, drifted
