"""Accuracy per model version as an inline SVG, rendered on the server.

Server-side SVG needs no JavaScript, no CDN and no chart library in the frontend image, and it
is in the HTML a test (or a screen reader, via the table next to it) can read.
"""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from modelops.core.history import Event
from modelops.core.store import ModelStore

# Drawing area, in SVG user units; the SVG scales to the page width.
WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 16, 36

STATUS_LABELS = {
    "served": "served now",
    "promoted": "promoted",
    "rolled back": "rolled back",
    "rejected": "rejected by the gate",
}


@dataclass(frozen=True)
class Point:
    version: int
    accuracy: float
    status: str  # a key of STATUS_LABELS


def accuracy_points(store: ModelStore, records: list[dict], served: int | None) -> list[Point]:
    """One point per version with a known accuracy: history first, then metrics.json files."""
    points: dict[int, tuple[float | None, str]] = {}
    for r in records:
        version = r.get("version")
        if not isinstance(version, int):
            continue
        accuracy = _number(r.get("accuracy_percent"))
        if r.get("event") in (Event.PROMOTE, Event.REJECT):
            points[version] = (accuracy, "promoted" if r["event"] == Event.PROMOTE else "rejected")
        elif r.get("event") == Event.ROLLBACK and version in points:
            points[version] = (points[version][0], "rolled back")
    for version, retired in [(v, False) for v in store.versions()] + [(v, True) for v in store.retired()]:
        known_accuracy, status = points.get(version, (None, "promoted"))
        metrics = store.metrics(version, retired=retired) or {}
        accuracy = _number(metrics.get("test_accuracy_percent"))
        status = "rolled back" if retired else ("served" if version == served else status)
        points[version] = (accuracy if accuracy is not None else known_accuracy, status)
    return [Point(v, a, s) for v, (a, s) in sorted(points.items()) if a is not None]


def render_svg(points: list[Point], threshold: float) -> Markup:
    """The chart: a threshold line, promoted versions joined, rejected ones crossed out."""
    lowest = min([threshold, *(p.accuracy for p in points)])
    y_min = max(0.0, _floor_to(lowest - 1.0, 5.0 if threshold - lowest > 10 else 1.0))
    y_max = 100.0

    def x(i: int) -> float:
        span = WIDTH - LEFT - RIGHT
        return LEFT + span / 2 if len(points) == 1 else LEFT + span * i / (len(points) - 1)

    def y(value: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (y_max - value) / (y_max - y_min)

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title chart-desc" '
        'xmlns="http://www.w3.org/2000/svg">',
        '<title id="chart-title">Test accuracy per model version</title>',
        f'<desc id="chart-desc">{len(points)} versions; the dashed line is the gate threshold of '
        f"{threshold:g}%; crosses are candidates the gate rejected.</desc>",
    ]
    for tick in _ticks(y_min, y_max):
        parts.append(
            f'<line class="gridline" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:g}%</text>'
        )
    parts.append(
        f'<line class="threshold" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(threshold):.1f}" y2="{y(threshold):.1f}"/>'
        f'<text class="threshold-label" x="{WIDTH - RIGHT}" y="{y(threshold) - 5:.1f}" text-anchor="end">'
        f"gate {threshold:g}%</text>"
    )
    if not points:
        parts.append(
            f'<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
            "No model versions yet: train one with python retrain_pipeline.py</text>"
        )
    line = [f"{x(i):.1f},{y(p.accuracy):.1f}" for i, p in enumerate(points) if p.status in ("promoted", "served")]
    if len(line) > 1:
        parts.append(f'<polyline class="trend" points="{" ".join(line)}"/>')
    label_every = max(1, len(points) // 12)
    for i, p in enumerate(points):
        cx, cy = x(i), y(p.accuracy)
        tip = f"<title>v{p.version}: {p.accuracy:.2f}% ({STATUS_LABELS[p.status]})</title>"
        css = p.status.replace(" ", "-")
        if p.status == "rejected":
            parts.append(
                f'<g class="point {css}">{tip}<path d="M{cx - 6:.1f},{cy - 6:.1f}l12,12m0,-12l-12,12"/>'
                f'<rect x="{cx - 8:.1f}" y="{cy - 8:.1f}" width="16" height="16" fill="transparent" stroke="none"/></g>'
            )
        else:
            radius = 7 if p.status == "served" else 5
            parts.append(f'<g class="point {css}">{tip}<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius}"/></g>')
        if i % label_every == 0 or i == len(points) - 1:
            parts.append(
                f'<text class="axis" x="{cx:.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">v{p.version}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (numbers and fixed strings only)


def _ticks(lo: float, hi: float) -> list[float]:
    step = next(s for s in (1, 2, 5, 10, 20, 25) if (hi - lo) / s <= 6)
    first = _floor_to(lo, step)
    return [first + k * step for k in range(int((hi - first) / step) + 1) if first + k * step >= lo]


def _floor_to(value: float, step: float) -> float:
    return (value // step) * step


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
