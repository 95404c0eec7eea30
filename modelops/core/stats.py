"""Paired comparison of two models scored on the same rows: exact McNemar test and intervals.

Pure Python (no scipy, no numpy), so any part of the project can use it. Both models answer the
same eval rows, so only the rows where exactly one of them is right carry evidence: ``b`` rows
only the candidate gets right, ``c`` rows only the champion gets right. Under "equally good"
each such row is a fair coin, so ``b ~ Binomial(b + c, 1/2)``:

- the p-value is the exact two-sided McNemar test (twice the smaller binomial tail, at most 1):
  "how often would two equally good models split their disagreements this unevenly?";
- the 95 % interval of the accuracy difference ``(b - c) / n`` is Bonett & Price's adjusted
  Wald interval for paired proportions: unconditional (another sample would disagree on a
  different number of rows too), with good coverage at small counts. It can disagree with the
  exact test only at the margin (p near 0.05); the gate decides on the p-value.

For metrics that are not a per-row mean (balanced accuracy, macro F1) ``paired_bootstrap``
resamples the rows instead; any ``metric(y_true, y_pred) -> percent`` can be plugged in.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Metric = Callable[[Sequence[Any], Sequence[Any]], float]  # (y_true, y_pred) -> percent
CONFIDENCE = 0.95
Z95 = 1.959963984540054  # the standard normal quantile for a two-sided 95 % interval
BOOTSTRAP_ROUNDS = 2000


@dataclass(frozen=True)
class Paired:
    """What a paired comparison of candidate and champion found on ``rows`` shared rows."""

    method: str
    rows: int
    candidate_only_correct: int  # b
    champion_only_correct: int  # c
    candidate_percent: float
    champion_percent: float
    difference_percent: float  # candidate - champion
    ci95_percent: tuple[float, float]  # of the difference
    p_value: float  # two-sided
    unit: str = "%"  # of candidate_percent/champion_percent: "" for a number label's rmse, mae, r2

    def record(self, significance: float) -> dict[str, Any]:
        """The JSON form kept in ``metrics.json`` (``gate.comparison``) and the decision record."""
        return {
            "method": self.method, "rows": self.rows,
            "candidate_only_correct": self.candidate_only_correct,
            "champion_only_correct": self.champion_only_correct,
            "candidate_percent": round(self.candidate_percent, 4), "champion_percent": round(self.champion_percent, 4),
            "difference_percent": round(self.difference_percent, 4),
            "ci95_percent": [round(self.ci95_percent[0], 4), round(self.ci95_percent[1], 4)],
            "p_value": float(f"{self.p_value:.6g}"), "significance": significance,
            **({"unit": self.unit} if self.unit != "%" else {}),
        }

    def summary(self) -> str:
        """``-1.25 points (95% CI [-2.65, +0.16], p=0.109; only the candidate right on 2, ...)``"""
        lo, hi = self.ci95_percent
        if self.unit != "%":  # a number label: the relative change of the error, rows where one is closer
            return (f"{self.difference_percent:+.2f}% of the champion's error (95% CI [{lo:+.2f}, {hi:+.2f}], "
                    f"p={self.p_value:.3g}; the candidate closer on {self.candidate_only_correct}, "
                    f"the champion on {self.champion_only_correct} rows)")
        return (f"{self.difference_percent:+.2f} points (95% CI [{lo:+.2f}, {hi:+.2f}], p={self.p_value:.3g}; "
                f"only the candidate right on {self.candidate_only_correct}, "
                f"only the champion on {self.champion_only_correct} rows)")


def mcnemar(candidate_correct: Sequence[bool], champion_correct: Sequence[bool]) -> Paired:
    """The exact McNemar comparison of two models from their per-row correctness on the same rows."""
    if len(candidate_correct) != len(champion_correct) or not candidate_correct:
        raise ValueError("both models must be scored on the same, non-empty rows")
    n = len(candidate_correct)
    b = sum(1 for a, c in zip(candidate_correct, champion_correct, strict=True) if a and not c)
    c = sum(1 for a, c in zip(candidate_correct, champion_correct, strict=True) if c and not a)
    return Paired(
        method="exact McNemar (two-sided)", rows=n, candidate_only_correct=b, champion_only_correct=c,
        candidate_percent=100.0 * sum(map(bool, candidate_correct)) / n,
        champion_percent=100.0 * sum(map(bool, champion_correct)) / n, difference_percent=100.0 * (b - c) / n,
        ci95_percent=adjusted_wald(b, c, n), p_value=sign_test_p(b, b + c),
    )


def sign_test_p(k: int, n: int) -> float:
    """Exact two-sided p-value of ``k`` successes in ``n`` fair-coin trials (1.0 when n is 0)."""
    smaller = min(k, n - k)
    term, tail = 1, 0  # C(n, i), summed exactly as integers
    outcomes: int = 2**n
    for i in range(smaller + 1):
        tail += term
        term = term * (n - i) // (i + 1)
    return min(1.0, 2 * tail / outcomes)


def adjusted_wald(b: int, c: int, n: int) -> tuple[float, float]:
    """95 % interval of the paired accuracy difference ``(b - c) / n`` in points: Bonett & Price's
    adjusted Wald interval (one pseudo-row added to each discordant cell, 2012), which keeps its
    coverage at the small counts a gate sees, unlike the plain Wald interval."""
    p_b, p_c = (b + 1) / (n + 2), (c + 1) / (n + 2)
    centre = p_b - p_c
    half = Z95 * math.sqrt(max(0.0, p_b + p_c - centre**2) / (n + 2))
    return 100.0 * max(-1.0, centre - half), 100.0 * min(1.0, centre + half)


def paired_bootstrap(metric: Metric, y_true: Sequence[Any], candidate_pred: Sequence[Any], champion_pred: Sequence[Any],
                     name: str, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0) -> Paired:
    """A paired comparison for any ``metric``: the same resampled rows score both models.

    The interval is the percentile interval of the resampled differences; the p-value is twice
    the share of resamples on the far side of zero (at most 1). Seeded: the same rows give the
    same verdict every run.
    """
    n = len(y_true)
    if not n or len(candidate_pred) != n or len(champion_pred) != n:
        raise ValueError("both models must be scored on the same, non-empty rows")
    rng = random.Random(seed)
    diffs = []
    for _ in range(rounds):
        rows = [rng.randrange(n) for _ in range(n)]
        truth = [y_true[i] for i in rows]
        diffs.append(metric(truth, [candidate_pred[i] for i in rows]) - metric(truth, [champion_pred[i] for i in rows]))
    diffs.sort()
    candidate, champion = metric(y_true, candidate_pred), metric(y_true, champion_pred)
    alpha = (1.0 - CONFIDENCE) / 2
    below = sum(d <= 0 for d in diffs) / rounds
    above = sum(d >= 0 for d in diffs) / rounds
    hits = [(t == a, t == c) for t, a, c in zip(y_true, candidate_pred, champion_pred, strict=True)]
    return Paired(
        method=f"paired bootstrap of {name} ({rounds} resamples, two-sided)", rows=n,
        candidate_only_correct=sum(a and not c for a, c in hits),
        champion_only_correct=sum(c and not a for a, c in hits),
        candidate_percent=candidate, champion_percent=champion, difference_percent=candidate - champion,
        ci95_percent=(diffs[int(alpha * rounds)], diffs[min(rounds - 1, int((1 - alpha) * rounds))]),
        p_value=min(1.0, 2 * min(below, above)),
    )


def describe(record: Any) -> str | None:
    """A stored ``gate.comparison`` (see ``Paired.record``) as one line; None when it is not one."""
    try:
        lo, hi = (float(v) for v in record["ci95_percent"])
        if record.get("unit") == "":  # a number label: the relative change of the error
            return (f"{float(record['difference_percent']):+.2f}% of the champion's error (95% CI [{lo:+.2f}, "
                    f"{hi:+.2f}], p={float(record['p_value']):.3g}, significance {float(record['significance']):g}; "
                    f"the candidate closer on {int(record['candidate_only_correct'])}, "
                    f"the champion on {int(record['champion_only_correct'])} of {int(record['rows'])} rows)")
        return (f"{float(record['difference_percent']):+.2f} points vs the champion (95% CI [{lo:+.2f}, {hi:+.2f}], "
                f"p={float(record['p_value']):.3g}, significance {float(record['significance']):g}; "
                f"only the candidate right on {int(record['candidate_only_correct'])}, "
                f"only the champion on {int(record['champion_only_correct'])} of {int(record['rows'])} rows)")
    except (TypeError, KeyError, ValueError):
        return None
