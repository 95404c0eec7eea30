"""Per-slice gating: the eval rows grouped by a feature, each group compared like the whole.

A regression can hide in the overall number (a few points lost on one region of the inputs,
made up elsewhere), so ``gate.slices`` names features to slice by: each category value is a
slice, or with ``edges`` the numeric ranges ``< e1``, ``e1 <= .. < e2``, ..., ``>= ek``. The
slices of one feature cover every eval row exactly once. Feature values come by name from a
mapping ``name -> column``, so categorical features fit the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from modelops import gate, stats
from modelops.config import GateConfig, SliceConfig


def groups(spec: SliceConfig, columns: Mapping[str, Sequence]) -> list[tuple[str, list[int]]]:
    """``(slice name, row indices)`` for one slice spec; empty slices are left out."""
    values = columns[spec.feature]
    if not spec.edges:
        by_value: dict = {}
        for i, value in enumerate(values):
            by_value.setdefault(value, []).append(i)
        return [(f"{spec.feature} = {_text(v)}", rows) for v, rows in sorted(by_value.items(), key=lambda kv: kv[0])]
    edges = spec.edges
    bins: list[list[int]] = [[] for _ in range(len(edges) + 1)]
    for i, value in enumerate(values):
        bins[sum(value >= e for e in edges)].append(i)
    return [(_range_name(spec.feature, edges, k), rows) for k, rows in enumerate(bins) if rows]


def _range_name(feature: str, edges: Sequence[float], k: int) -> str:
    if k == 0:
        return f"{feature} < {_text(edges[0])}"
    if k == len(edges):
        return f"{feature} >= {_text(edges[-1])}"
    return f"{_text(edges[k - 1])} <= {feature} < {_text(edges[k])}"


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def score(config: GateConfig, columns: Mapping[str, Sequence], candidate_correct: Sequence[bool],
          champion_correct: Sequence[bool] | None) -> list[gate.SliceResult]:
    """Every slice of every ``gate.slices`` spec, scored for both models and judged."""
    results = []
    for spec in config.slices:
        for name, rows in groups(spec, columns):
            candidate = [bool(candidate_correct[i]) for i in rows]
            paired = None if champion_correct is None else stats.mcnemar(
                candidate, [bool(champion_correct[i]) for i in rows])
            results.append(gate.judge_slice(config, name, 100.0 * sum(candidate) / len(rows), len(rows), paired))
    return results
