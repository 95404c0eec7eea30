"""A number label's predicted-vs-actual chart for the model page: inline SVG drawn on the server.

The trainer stores up to 200 eval rows' ``values`` (``actual``, ``predicted``) and the ``scores``
(rmse, mae, r2) in a number-label version's metrics.json; the page shows them where a class
label's confusion table goes. A point on the diagonal is a perfect answer.
"""

from __future__ import annotations

import math
from typing import Any

from markupsafe import Markup, escape

SIZE, PAD = 320, 36


def values_view(model: dict[str, Any] | None) -> dict[str, Any] | None:
    """The chart and the scores, or None when the version has no usable ``values`` (a class label)."""
    found: Any = (model or {}).get("values")
    try:
        actual = [float(v) for v in found["actual"]]
        predicted = [float(v) for v in found["predicted"]]
    except (TypeError, KeyError, ValueError):
        return None
    pairs = [(a, p) for a, p in zip(actual, predicted, strict=False) if math.isfinite(a) and math.isfinite(p)]
    if not pairs:
        return None
    scores: Any = (model or {}).get("scores") or {}
    shown = {k: f"{float(scores[k]):.4g}" for k in ("rmse", "mae", "r2")
             if isinstance(scores, dict) and isinstance(scores.get(k), (int, float))}
    return {"svg": _svg(pairs), "scores": shown, "rows": len(pairs)}


def _svg(pairs: list[tuple[float, float]]) -> Markup:
    low = min(min(a, p) for a, p in pairs)
    high = max(max(a, p) for a, p in pairs)
    span = (high - low) or 1.0

    def at(value: float, flip: bool) -> float:
        share = (value - low) / span
        return round(PAD + (1 - share if flip else share) * (SIZE - 2 * PAD), 1)

    dots = "".join(f'<circle cx="{at(a, False)}" cy="{at(p, True)}" r="2.5"/>' for a, p in pairs)
    return Markup(  # noqa: S704 (numbers and fixed strings only; the bounds are escaped)
        f'<svg class="scatter" viewBox="0 0 {SIZE} {SIZE}" role="img" aria-label="predicted against actual, '
        f'{len(pairs)} eval rows">'
        f'<line x1="{PAD}" y1="{SIZE - PAD}" x2="{SIZE - PAD}" y2="{PAD}" class="diagonal"/>'
        f'<g class="points">{dots}</g>'
        f'<text x="{SIZE / 2}" y="{SIZE - 8}" text-anchor="middle">actual ({escape(f"{low:.4g}")} to '
        f'{escape(f"{high:.4g}")})</text>'
        f'<text x="12" y="{SIZE / 2}" transform="rotate(-90 12 {SIZE / 2})" text-anchor="middle">predicted</text>'
        "</svg>")
