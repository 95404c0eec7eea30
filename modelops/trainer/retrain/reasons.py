"""Did the model's reasons move? The candidate's share of importance per feature against the
champion's (``metrics.json`` ``explanations``): a move beyond ``gate.warn_importance_shift`` is a
warning in the run log; beyond ``gate.max_importance_shift`` (when below 1.0, i.e. set) it rejects."""

from __future__ import annotations

import dataclasses

from modelops.core import importance
from modelops.core.config import Config
from modelops.core.store import ModelStore
from modelops.trainer.gate import Decision
from modelops.trainer.retrain.evaluation import Champion, Evaluation
from modelops.trainer.retrain.runlog import RunLog


def check(config: Config, store: ModelStore, evaluation: Evaluation, champion: Champion, decision: Decision,
          log: RunLog) -> Decision:
    """Log each feature whose share moved more than the warning amount; the decision, with a
    rejecting reason added when the largest move exceeds a set ``gate.max_importance_shift``."""
    if champion.version is None or evaluation.explanations is None:
        return decision
    new = importance.shares({"explanations": evaluation.explanations})
    old = importance.shares(store.metrics(champion.version))
    if new is None or old is None:
        return decision
    moved = importance.shifts(new, old)
    for name, shift in moved:
        if abs(shift) > config.gate.warn_importance_shift:
            log.note(f"  warning: the model's reasons moved vs v{champion.version}: "
                     f"{importance.shift_line(name, shift, new, old)}")
    limit = config.gate.max_importance_shift
    if limit >= 1.0 or not moved or abs(moved[0][1]) <= limit:
        return decision
    name, shift = moved[0]
    reason = (f"{importance.shift_line(name, shift, new, old)} vs v{champion.version}: more than "
              f"gate.max_importance_shift {limit:g}")
    return dataclasses.replace(decision, promote=False, reasons=(*decision.reasons, reason))
