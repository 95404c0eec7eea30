"""How well predicted numbers match a number label: rmse, mae, r2, and the paired comparison.

``gate.metric`` for a number label is ``rmse`` (the default), ``mae`` or ``r2``; the absolute bound
is ``gate.max_rmse``, ``gate.max_mae`` or ``gate.min_r2``. Candidate and champion are compared on
the same eval rows by a seeded paired bootstrap of their per-row squared errors (rmse, r2) or
absolute errors (mae) (``modelops.trainer.bootstrap``). The comparison's ``difference_percent``
is the change of the error relative to the champion's, in percent, positive when the candidate is
better (for r2: the gain in r2 points x 100), so ``gate.max_regression_percent`` and
``gate.significance`` mean what they mean for classes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from modelops.core import stats
from modelops.core.config import GateConfig
from modelops.trainer import bootstrap

METRICS = ("rmse", "mae", "r2")
BOUND_KEYS = {"rmse": "max_rmse", "mae": "max_mae", "r2": "min_r2"}


def scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Every metric of predicted values against the labels (rmse and mae in the label's units)."""
    predicted, truth = np.asarray(predicted, np.float64).reshape(-1), np.asarray(truth, np.float64).reshape(-1)
    error = predicted - truth
    spread = float(np.sum((truth - truth.mean()) ** 2)) if len(truth) else 0.0
    return {"rmse": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error))),
            "r2": 1.0 - float(np.sum(error**2)) / spread if spread > 0 else 0.0}


def floor(gate: GateConfig, value: float) -> tuple[bool, str]:
    """The absolute bound on the candidate's ``gate.metric``: passed?, and the line that says so."""
    metric, key = gate.metric, BOUND_KEYS[gate.metric]
    bound = getattr(gate, key)
    if metric == "r2":
        ok = value >= bound
        return ok, f"r2 {value:.4f} {'>=' if ok else '<'} {bound:g}" + ("" if ok else f" (gate.{key})")
    ok = value <= bound
    return ok, f"{metric} {value:.4g} {'<=' if ok else '>'} {bound:g}" + ("" if ok else f" (gate.{key})")


def paired(metric: str, truth: np.ndarray, candidate: np.ndarray, champion: np.ndarray,
           rounds: int = stats.BOOTSTRAP_ROUNDS, seed: int = 0) -> stats.Paired:
    """Candidate vs champion on the same rows: a paired bootstrap of the per-row errors.

    ``candidate_percent``/``champion_percent`` hold the metric itself (rmse, mae in the label's
    units; r2); ``difference_percent`` and the interval are the relative change (see the module).
    """
    truth, a, b = (np.asarray(v, np.float64).reshape(-1) for v in (truth, candidate, champion))
    n = len(truth)
    if not n or len(a) != n or len(b) != n:
        raise ValueError("both models must be scored on the same, non-empty rows")
    err_a, err_b = (np.abs(a - truth) if metric == "mae" else (a - truth) ** 2,
                    np.abs(b - truth) if metric == "mae" else (b - truth) ** 2)
    spread = (truth - truth.mean()) ** 2

    def relative(idx: np.ndarray) -> np.ndarray:  # [r, n] resampled rows -> [r] candidate's gain in percent
        mine, theirs = err_a[idx].mean(axis=1), err_b[idx].mean(axis=1)
        if metric == "r2":
            total = np.maximum(spread[idx].mean(axis=1), 1e-12)
            return (theirs - mine) / total * 100.0
        if metric == "rmse":
            mine, theirs = np.sqrt(mine), np.sqrt(theirs)
        return (theirs - mine) / np.maximum(theirs, 1e-12) * 100.0

    gains = bootstrap.resample_scores(n, relative, rounds, seed)
    whole = float(relative(np.arange(n)[None, :])[0])
    better = (int(np.sum(err_a < err_b)), int(np.sum(err_b < err_a)))
    found = bootstrap.compare(f"{metric} (per-row errors)", n, 0.0, 0.0, gains, better)
    mine, theirs = scores(a, truth)[metric], scores(b, truth)[metric]
    return dataclasses.replace(found, candidate_percent=mine, champion_percent=theirs, difference_percent=whole,
                               unit="")


def value_record(predicted: np.ndarray, truth: np.ndarray, points: int = 200) -> dict:
    """Predicted vs actual on (up to ``points``, evenly spaced) eval rows, for the model page's chart."""
    predicted, truth = np.asarray(predicted).reshape(-1), np.asarray(truth).reshape(-1)
    step = max(1, len(truth) // points)
    return {"actual": [round(float(v), 4) for v in truth[::step][:points]],
            "predicted": [round(float(v), 4) for v in predicted[::step][:points]]}
