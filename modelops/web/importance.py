"""The model page's "what this version relies on": each feature's share of the importance the
trainer measured on the eval rows (``metrics.json`` ``explanations``, docs/explain.md), for the
shown version beside the champion it replaced, and one answer's explanation as signed bars."""

from __future__ import annotations

from typing import Any

from modelops.core import importance
from modelops.core.store import ModelStore


def page_context(models: ModelStore, model: dict[str, Any] | None, version: int | None) -> dict[str, Any] | None:
    """Rows ``{name, share, previous}`` largest share first, or None when the version has no record."""
    shares = importance.shares(model)
    if version is None or shares is None:
        return None
    champion = (model or {}).get("champion")
    previous_version = champion.get("version") if isinstance(champion, dict) else None
    previous = importance.shares(models.metrics(previous_version)) if isinstance(previous_version, int) else None
    rows = [{"name": name, "share": share, "previous": None if previous is None else previous.get(name, 0.0)}
            for name, share in sorted(shares.items(), key=lambda item: -item[1])]
    return {"version": version, "previous_version": previous_version if previous else None, "rows": rows}


def answer_bars(explanation: dict[str, Any]) -> dict[str, Any]:
    """One answer's explanation with its contributions as bars (width in percent of the largest),
    the ones that raise the explained class's probability apart from the ones that lower it."""
    features = explanation["features"]
    largest = max((abs(f["contribution"]) for f in features), default=0.0) or 1.0
    bars = [{**f, "width": round(100 * abs(f["contribution"]) / largest, 1)} for f in features]
    return {**explanation, "raise": [b for b in bars if b["contribution"] >= 0],
            "lower": [b for b in bars if b["contribution"] < 0]}
