"""The promotion gate: a pure decision from numbers measured in the same run.

Promote only if the candidate's SavedModel reloaded and answered sanely, there are enough eval
rows to decide, its score (``gate.metric``, accuracy by default: ``modelops.scoring``) meets the
floor, and (when a champion exists) it is not worse than the champion by more than the allowed
regression. Every failed rule is listed, not just the first.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelops.config import GateConfig


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: tuple[str, ...]
    threshold_percent: float


def decide(
    gate: GateConfig,
    candidate_accuracy: float,
    champion_accuracy: float | None,
    eval_rows: int,
    sanity_error: str | None = None,
    no_champion: str = "no champion yet",
) -> Decision:
    """Apply the gate rules; ``reasons`` explains the outcome either way (``no_champion`` says why
    there is no champion to compare with, when there is none)."""
    failed, passed = [], []
    if sanity_error:
        failed.append(f"exported model failed the reload check: {sanity_error}")
    if eval_rows < gate.min_eval_rows:
        failed.append(f"only {eval_rows} eval rows, gate.min_eval_rows is {gate.min_eval_rows}")
    floor, metric = gate.min_accuracy_percent, gate.metric  # the candidate's and champion's score by gate.metric
    if candidate_accuracy >= floor:
        passed.append(f"{metric} {candidate_accuracy:.2f}% >= {floor:.2f}%")
    else:
        failed.append(f"{metric} {candidate_accuracy:.2f}% < {floor:.2f}% (gate.min_accuracy_percent)")
    if champion_accuracy is None:
        passed.append(f"{no_champion}: floor only")
    else:
        allowed = champion_accuracy - gate.max_regression_percent
        if candidate_accuracy >= allowed:
            passed.append(
                f"not worse than champion {champion_accuracy:.2f}% by more than {gate.max_regression_percent}"
            )
        else:
            failed.append(
                f"regression: {candidate_accuracy:.2f}% vs champion {champion_accuracy:.2f}% "
                f"(more than gate.max_regression_percent={gate.max_regression_percent})"
            )
    return Decision(promote=not failed, reasons=tuple(failed or passed), threshold_percent=floor)
