"""A version's reasons, as its ``metrics.json`` keeps them, and how they moved between versions.

The trainer records under ``explanations`` the mean absolute attribution of each declared feature
over the eval rows (``explain`` signature, docs/explain.md) and each one's share of their sum; the
model page, ``compare`` and the run log read the shares from here, so "share" means one thing.
"""

from __future__ import annotations

from typing import Any


def record(mean_abs: dict[str, float]) -> dict[str, dict[str, float]]:
    """``metrics.json``'s importance fields for these per-feature mean absolute attributions."""
    total = sum(mean_abs.values())
    return {"mean_abs_attribution": {name: round(value, 6) for name, value in mean_abs.items()},
            "share": {name: round(value / total if total > 0 else 0.0, 6) for name, value in mean_abs.items()}}


def shares(metrics: dict[str, Any] | None) -> dict[str, float] | None:
    """Each feature's share of the importance recorded with a version; None when it has none
    (a version exported before explanations, or an unreadable ``metrics.json``)."""
    explanations = (metrics or {}).get("explanations")
    found = explanations.get("share") if isinstance(explanations, dict) else None
    if not isinstance(found, dict):
        return None
    return {str(name): float(value) for name, value in found.items() if isinstance(value, int | float)}


def shifts(new: dict[str, float], old: dict[str, float]) -> list[tuple[str, float]]:
    """Per feature (of either version), new share minus old share, the largest move first."""
    names = list(new) + [name for name in old if name not in new]
    moved = [(name, round(new.get(name, 0.0) - old.get(name, 0.0), 6)) for name in names]
    return sorted(moved, key=lambda item: -abs(item[1]))


def shift_line(name: str, shift: float, new: dict[str, float], old: dict[str, float]) -> str:
    """``'amount' 12% -> 47% of the importance``: one feature's move, in words."""
    return f"'{name}' {old.get(name, 0.0):.0%} -> {new.get(name, 0.0):.0%} of the importance ({shift:+.0%})"
