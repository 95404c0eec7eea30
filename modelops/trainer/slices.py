"""Per-slice gating: the eval rows grouped by a feature, each group compared like the whole.

A regression can hide in the overall number (a few points lost on one region of the inputs,
made up elsewhere), so ``gate.slices`` names features to slice by: each category value is a
slice, or with ``edges`` the numeric ranges ``< e1``, ``e1 <= .. < e2``, ..., ``>= ek``. The
slices of one feature cover every eval row exactly once. Which features may be sliced, and how,
follows the declared schema (``config._check_slices``: a category by value, a number by edges);
feature values come by name from a mapping ``name -> column`` (``data.columns``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from modelops.core.config import GateConfig, SliceConfig
from modelops.trainer import gate, scoring


def groups(spec: SliceConfig, columns: Mapping[str, Sequence]) -> list[tuple[str, list[int]]]:
    """``(slice name, row indices)`` for one slice spec; empty slices are left out. Rows missing
    the value (an optional feature: NaN or "") form their own slice, ``<feature> missing``."""
    values = columns[spec.feature]
    missing = [i for i, value in enumerate(values) if _missing(value)]
    present = [(i, value) for i, value in enumerate(values) if not _missing(value)]
    found: list[tuple[str, list[int]]]
    if not spec.edges:
        by_value: dict = {}
        for i, value in present:
            by_value.setdefault(value, []).append(i)
        found = [(f"{spec.feature} = {_text(v)}", rows) for v, rows in sorted(by_value.items(), key=lambda kv: kv[0])]
    else:
        edges = spec.edges
        bins: list[list[int]] = [[] for _ in range(len(edges) + 1)]
        for i, value in present:
            bins[sum(value >= e for e in edges)].append(i)
        found = [(_range_name(spec.feature, edges, k), rows) for k, rows in enumerate(bins) if rows]
    return found + ([(f"{spec.feature} missing", missing)] if missing else [])


def _missing(value) -> bool:
    return value is None or value == "" or isinstance(value, float) and math.isnan(value)


def _range_name(feature: str, edges: Sequence[float], k: int) -> str:
    if k == 0:
        return f"{feature} < {_text(edges[0])}"
    if k == len(edges):
        return f"{feature} >= {_text(edges[-1])}"
    return f"{_text(edges[k - 1])} <= {feature} < {_text(edges[k])}"


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def score(config: GateConfig, columns: Mapping[str, Sequence], y_true: Sequence, candidate: Sequence,
          champion: Sequence | None) -> list[gate.SliceResult]:
    """Every slice of every ``gate.slices`` spec, scored by ``gate.metric`` for both models (their
    predicted classes) with the same paired test as the whole (``scoring.paired``), and judged."""
    results = []
    truth_all, mine_all = np.asarray(y_true), np.asarray(candidate)
    theirs_all = None if champion is None else np.asarray(champion)
    for spec in config.slices:
        for name, rows in groups(spec, columns):
            at = np.asarray(rows, dtype=np.int64)
            truth, mine = truth_all[at], mine_all[at]
            paired = None if theirs_all is None else scoring.paired(config.metric, truth, mine, theirs_all[at])
            results.append(gate.judge_slice(config, name, scoring.metric_percent(config.metric, truth, mine),
                                            len(rows), paired))
    return results
