"""The run log names a feature whose share of the importance moved beyond gate.warn_importance_shift
against the champion; a set gate.max_importance_shift rejects such a candidate, with the reason."""

from __future__ import annotations

import dataclasses

import numpy as np

from modelops.core import importance
from modelops.core.config import Config, GateConfig
from modelops.core.store import ModelStore
from modelops.trainer.gate import Decision
from modelops.trainer.retrain import reasons
from modelops.trainer.retrain.evaluation import Champion, Evaluation
from modelops.trainer.retrain.runlog import RunLog

PROMOTE = Decision(True, ("98.00% >= 97.0%",), 97.0)


def _setup(tmp_path, gate: GateConfig):
    store = ModelStore(tmp_path / "models")
    (tmp_path / "c").mkdir()
    store.publish(tmp_path / "c", 1, {"version": 1, "explanations": importance.record({"x1": 0.5, "x2": 0.5})})
    config = dataclasses.replace(Config(), gate=gate)
    evaluation = Evaluation(None, np.zeros((1, 1)), 98.0, None,
                            explanations=importance.record({"x1": 0.9, "x2": 0.1}))
    return config, store, evaluation, Champion(1, 1, 97.5)


def test_a_moved_feature_is_a_warning_not_a_rejection_by_default(tmp_path):
    config, store, evaluation, champion = _setup(tmp_path, GateConfig())
    lines: list[str] = []
    with RunLog(tmp_path / "log.txt", ("evaluate",), echo=lines.append) as log:
        decision = reasons.check(config, store, evaluation, champion, PROMOTE, log)
    assert decision == PROMOTE
    assert any("warning" in line and "'x1' 50% -> 90%" in line for line in lines)


def test_a_set_max_importance_shift_rejects(tmp_path):
    config, store, evaluation, champion = _setup(tmp_path, GateConfig(max_importance_shift=0.3))
    with RunLog(tmp_path / "log.txt", ("evaluate",), echo=lambda _line: None) as log:
        decision = reasons.check(config, store, evaluation, champion, PROMOTE, log)
    assert not decision.promote and "gate.max_importance_shift 0.3" in decision.reasons[-1]
