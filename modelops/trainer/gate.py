"""The promotion gate: a pure decision from numbers measured in the same run.

Promote only if the candidate's SavedModel reloaded and answered sanely, there are enough eval
Promote only if the candidate's SavedModel reloaded and answered sanely, there are enough eval
rows to decide, its score (``gate.metric``, accuracy by default: ``modelops.trainer.scoring``) meets the
floor, and (when a champion exists) the paired comparison on the same rows (``modelops.core.stats``:
exact McNemar for accuracy, a paired bootstrap for the other metrics) shows no regression that is
both significant (``p < gate.significance``) and larger than ``gate.max_regression_percent``,
overall or in any judged slice. With ``gate.require_improvement`` the candidate must also be
significantly better. One standard error of the difference is about a point at a few hundred
rows, so a fixed margin alone would reject noise (docs/gate.md). Every failed rule is listed,
not just the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from modelops.core.config import GateConfig
from modelops.core.stats import Paired


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: tuple[str, ...]
    threshold_percent: float


@dataclass(frozen=True)
class SliceResult:
    """One slice of the eval rows, scored for both models with the same test."""

    name: str
    rows: int
    candidate_percent: float
    paired_test: Paired | None  # None: no champion
    verdict: str  # "regression", "ok", "not judged (...)" or "no champion"

    def record(self) -> dict:
        paired = self.paired_test
        return {"name": self.name, "rows": self.rows, "candidate_percent": round(self.candidate_percent, 4),
                "champion_percent": None if paired is None else round(paired.champion_percent, 4),
                "p_value": None if paired is None else round(paired.p_value, 6), "verdict": self.verdict}


def regressed(gate: GateConfig, paired: Paired) -> bool:
    """A regression that is both significant and larger than the allowed margin."""
    return paired.p_value < gate.significance and -paired.difference_percent > gate.max_regression_percent


def judge_slice(gate: GateConfig, name: str, candidate_percent: float, rows: int, paired: Paired | None) -> SliceResult:
    """A slice too small to decide is reported, not judged."""
    if paired is None:
        verdict = "no champion"
    elif rows < gate.min_slice_rows:
        verdict = f"not judged (fewer than gate.min_slice_rows={gate.min_slice_rows} rows)"
    else:
        verdict = "regression" if regressed(gate, paired) else "ok"
    return SliceResult(name, rows, candidate_percent, paired, verdict)


def decide(
    gate: GateConfig,
    candidate_score: float,
    paired_test: Paired | None,
    eval_rows: int,
    sanity_error: str | None = None,
    no_champion: str = "no champion yet",
    slices: Sequence[SliceResult] = (),
    floor_verdict: tuple[bool, str] | None = None,
) -> Decision:
    """Apply the gate rules; ``reasons`` explains the outcome either way. ``candidate_score``: its
    ``gate.metric`` score in percent; ``paired_test`` pairs the candidate with the champion on the
    eval rows (None: no champion, and ``no_champion`` says why). ``floor_verdict``: a number label's
    absolute bound instead of the percent floor (``modelops.trainer.regression.floor``)."""
    failed: list[str] = []
    passed: list[str] = []
    if sanity_error:
        failed.append(f"exported model failed the reload check: {sanity_error}")
    if eval_rows < gate.min_eval_rows:
        failed.append(f"only {eval_rows} eval rows, gate.min_eval_rows is {gate.min_eval_rows}")
    floor, metric = gate.min_accuracy_percent, gate.metric  # the candidate's and champion's score by gate.metric
    if floor_verdict is not None:
        (passed if floor_verdict[0] else failed).append(floor_verdict[1])
    elif candidate_score >= floor:
        passed.append(f"{metric} {candidate_score:.2f}% >= {floor:.2f}%")
    else:
        failed.append(f"{metric} {candidate_score:.2f}% < {floor:.2f}% (gate.min_accuracy_percent)")
    if paired_test is None:
        passed.append(f"{no_champion}: floor only")
    else:
        champion = f"{paired_test.champion_percent:.2f}{paired_test.unit}"
        versus = f"in {metric} vs champion {champion}: {paired_test.summary()}"
        if regressed(gate, paired_test):
            failed.append(f"significant regression {versus} (p < gate.significance={gate.significance:g} "
                          f"and more than gate.max_regression_percent={gate.max_regression_percent:g})")
        elif gate.require_improvement and not (paired_test.difference_percent > 0
                                               and paired_test.p_value < gate.significance):
            failed.append(f"no significant improvement {versus} (gate.require_improvement, "
                          f"gate.significance={gate.significance:g})")
        else:
            passed.append(f"no significant regression {versus}")
    for s in slices:
        if s.verdict == "regression" and s.paired_test is not None:
            failed.append(f"significant regression in slice {s.name} ({s.rows} rows): "
                          f"{metric} {s.candidate_percent:.2f}{s.paired_test.unit} vs champion "
                          f"{s.paired_test.champion_percent:.2f}{s.paired_test.unit}, "
                          f"{s.paired_test.summary()}")
    return Decision(promote=not failed, reasons=tuple(failed or passed), threshold_percent=floor)
