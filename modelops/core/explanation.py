"""One row's explanation, from what TF Serving's ``explain`` signature answered for it.

The signature (docs/explain.md) answers per row ``attributions`` (one per declared feature, in
schema order), ``prediction``, ``baseline_prediction`` and ``explained_class`` (a number label's:
no class, its prediction is the value); callers show the
features largest contribution first, beside the baseline's prediction they add up from.
"""

from __future__ import annotations

from typing import Any

from modelops.core.errors import ServingHTTPError
from modelops.core.schema import Schema
from modelops.core.signature import (
    ATTRIBUTIONS_OUTPUT,
    BASELINE_OUTPUT,
    EXPLAINED_CLASS_OUTPUT,
    PREDICTION_OUTPUT,
)


def read(answer: Any, schema: Schema) -> dict[str, Any]:
    """``{"class", "prediction", "baseline_prediction", "features": [{"name", "contribution"}]}``,
    features by absolute contribution, largest first (a number label: no ``class``, the prediction
    is the value); a malformed answer is a 502 naming it."""
    attributions, prediction, baseline, explained = parse(answer, schema)
    ranked = sorted(zip(schema.features, attributions, strict=True), key=lambda pair: -abs(pair[1]))
    features = [{"name": f.name, "contribution": round(a, 6)} for f, a in ranked]
    return {**({} if explained is None else {"class": explained}), "prediction": round(prediction, 6),
            "baseline_prediction": round(baseline, 6), "features": features}


def parse(answer: Any, schema: Schema) -> tuple[list[float], float, float, str | None]:
    """``(attributions in schema order, prediction, baseline prediction, class explained or None for a
    number label)`` of one row's answer; ServingHTTPError (502) when it is not one."""
    try:
        attributions = [float(a) for a in answer[ATTRIBUTIONS_OUTPUT]]
        prediction, baseline = float(answer[PREDICTION_OUTPUT]), float(answer[BASELINE_OUTPUT])
        explained = None if schema.label.is_number else str(answer[EXPLAINED_CLASS_OUTPUT])
    except (KeyError, TypeError, ValueError) as exc:
        raise ServingHTTPError(502, f"TF Serving's explain answer is not one this frontend reads ({exc!r}); "
                                    "is the served version exported before explanations (docs/explain.md)?") from None
    if len(attributions) != len(schema.features):
        raise ServingHTTPError(502, f"TF Serving explained {len(attributions)} features, the schema declares "
                                    f"{len(schema.features)}")
    return attributions, prediction, baseline, explained
