"""Candidate and champion scored on the same eval rows, and the gate's decision on that evidence.

Both are scored through the signature TF Serving runs (the candidate's reloaded export, the
champion's own, fed from the rows its own schema reads), by ``gate.metric``; the gate compares
their predicted classes row by row (a paired test, overall and per slice, docs/gate.md).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from modelops.core import importance, stats
from modelops.core.config import Config
from modelops.core.errors import ServableError, StoreError
from modelops.core.schema import recorded_schema
from modelops.core.store import ModelStore
from modelops.trainer import gate, regression, scoring, slices
from modelops.trainer.data import tables
from modelops.trainer.retrain.runlog import RunLog

if TYPE_CHECKING:
    from modelops.trainer.model.training import Candidate


@dataclass(frozen=True)
class Evaluation:
    """A trained candidate scored through its reloaded export on the eval rows.

    The probabilities are kept: verification compares what serving answers with them.
    """

    candidate: Candidate
    probabilities: np.ndarray
    score: float  # the gate.metric score, in percent
    sanity_error: str | None
    scores: dict[str, float] = dataclasses.field(default_factory=dict)  # every metric (modelops.trainer.scoring)
    confusion: np.ndarray | None = None  # [true class, predicted class] counts
    # per eval row, the predicted class index (the paired test's input; correct where it equals the
    # label); None when the export answered no usable probabilities
    predicted: np.ndarray | None = None
    # metrics.json's ``explanations``: baseline, steps and per-feature importance on the eval rows
    explanations: dict | None = None


@dataclass(frozen=True)
class Champion:
    """The served version the candidate must not regress from, or why there is none."""

    served: int | None  # the version TF Serving serves now
    version: int | None  # ``served`` if it could be evaluated, else None: the floor alone decides
    score: float | None  # its gate.metric score on the same eval rows, in percent
    absent: str = "no champion yet"
    predicted: np.ndarray | None = None  # per eval row, its predicted class index, when evaluated

    def versus(self) -> str:
        return f" vs champion v{self.version} {self.score:.2f}%" if self.version is not None else ""


@dataclass(frozen=True)
class Gated:
    """A candidate and what the gate measured and decided about it in this run."""

    version: int
    run_dir: Path
    evaluation: Evaluation
    champion: Champion
    decision: gate.Decision
    dataset: tables.Dataset
    split: tables.Split
    paired_test: stats.Paired | None  # candidate vs champion on the eval rows
    slices: list[gate.SliceResult]
    lineage: dict

    def summary(self) -> str:
        """``v<N> <score>%[ vs champion ...]: <reasons>`` for the decision record's message."""
        return (f"v{self.version} {self.evaluation.score:.2f}%{self.champion.versus()}: "
                f"{'; '.join(self.decision.reasons)}")


def train_and_evaluate(config: Config, split: tables.Split, run_dir: Path, label: str, log: RunLog) -> Evaluation:
    """Train, export, reload the export and score it on the eval rows through its signature."""
    from modelops.trainer.model import network as model
    from modelops.trainer.model import training as train  # TensorFlow loads only when a run needs it

    schema = config.schema
    candidate = train.train_candidate(config.train, split, run_dir / "candidate", schema, config.train_module_path)
    log.step("train", f"{label}, loss {candidate.training_loss:.4f}, "
                      f"{config.train.epochs} epochs in {candidate.seconds:.1f}s"
                      + (f", model from {config.train.module}" if config.train.module else ""))
    probabilities = model.predict(model.load_signature(candidate.path), split.x_eval, schema, split.text_eval)
    if schema.label.is_number:
        return _evaluate_values(config, split, candidate, probabilities, label, log)
    width = 1 if schema.packed else schema.num_classes
    sanity_error = _sanity_error(probabilities, (len(split.y_eval), width))
    if sanity_error:
        log.step("evaluate", f"{label} answers no usable probabilities: {sanity_error}")
        return Evaluation(candidate, probabilities, 0.0, sanity_error)
    predicted = scoring.predicted_classes(probabilities)
    table = scoring.confusion(predicted, split.y_eval, schema.num_classes)
    scores = scoring.scores_percent(table)
    score = scores[config.gate.metric]
    log.step("evaluate", f"{label} {_metric(config)}{score:.2f}% on {len(split.y_eval)} eval rows")
    return Evaluation(candidate, probabilities, score, None, scores, table, predicted,
                      _explanations(candidate, schema, split))


def _explanations(candidate: Candidate, schema, split: tables.Split) -> dict:
    """What the candidate's ``explain`` signature says of the eval rows (docs/explain.md)."""
    from modelops.trainer.model import explain

    mean_abs = explain.importance(candidate.path, schema, split.x_eval, split.text_eval)
    return {"baseline": candidate.baseline, "steps": explain.STEPS, "rows": len(split.y_eval),
            **importance.record(mean_abs)}


def _evaluate_values(config: Config, split: tables.Split, candidate: Candidate, values: np.ndarray, label: str,
                     log: RunLog) -> Evaluation:
    """A number label: the values must be finite, one per row; scored by rmse, mae and r2."""
    values = np.asarray(values)
    if values.shape != (len(split.y_eval),) or not np.isfinite(values).all():
        error = f"output shape {values.shape}, expected ({len(split.y_eval)},) finite values"
        log.step("evaluate", f"{label} answers no usable values: {error}")
        return Evaluation(candidate, values, 0.0, error)
    scores = regression.scores(values, split.y_eval)
    log.step("evaluate", f"{label} {config.gate.metric} {scores[config.gate.metric]:.4g} "
                         f"(rmse {scores['rmse']:.4g}, mae {scores['mae']:.4g}, r2 {scores['r2']:.3f}) "
                         f"on {len(split.y_eval)} eval rows")
    return Evaluation(candidate, values, scores[config.gate.metric], None, scores, None, values,
                      _explanations(candidate, schema=config.schema, split=split))


def _metric(config: Config) -> str:
    """The gate metric's name for a progress line: said unless it is the default, accuracy."""
    return "" if config.gate.metric == "accuracy" else f"{config.gate.metric} "


def _sanity_error(probabilities: np.ndarray, shape: tuple[int, int]) -> str | None:
    if probabilities.shape != shape:
        return f"output shape {probabilities.shape}, expected {shape}"
    values = probabilities.reshape(-1).tolist()
    if not all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in values):
        return "outputs are not all finite probabilities in [0, 1]"
    return None


def evaluate_champion(config: Config, store: ModelStore, split: tables.Split, log: RunLog) -> Champion:
    """Score the served version on the same eval rows, through the signature TF Serving runs: its own,
    fed from the rows its own schema reads (the config's may have changed since it was trained)."""
    from modelops.trainer.model import network as model

    served = store.latest()
    if served is None:
        return _no_champion(Champion(None, None, None), log)
    own = recorded_schema(store.metrics(served))
    gap = own.scoring_gap(config.schema) if own is not None else "its recorded schema cannot be read"
    if own is not None and not gap:
        x, text = tables.relayout(config.schema, own, split.x_eval, split.text_eval)
        if any(np.isnan(x[:, i]).any() for i, f in enumerate(own.numeric) if not f.optional):
            gap = "the eval rows miss values it requires"
    if gap:
        return _no_champion(Champion(served, None, None, f"served v{served} was trained on another schema ({gap}): "
                                                         "comparison skipped"), log)
    try:
        probabilities = model.predict(model.load_signature(store.path(served)), x, own, text)
    except ServableError as exc:
        # TF Serving cannot answer with this export either (e.g. one saved before ExportArchive):
        # there is no working model to protect, so it is no champion and the floor decides.
        first = (exc.message.splitlines() or [""])[0].split(". ")[0]
        return _no_champion(Champion(served, None, None, f"served v{served} cannot answer ({exc.code}: {first})"), log)
    except Exception as exc:
        raise StoreError(
            f"could not evaluate the serving champion v{served}: {exc}; "
            "retire it with 'retrain_pipeline.py rollback' and retrain"
        ) from exc
    if config.schema.label.is_number:  # the same label kind as the config's (Schema.scoring_gap)
        predicted = np.asarray(probabilities)
        score = regression.scores(predicted, split.y_eval)[config.gate.metric]
    else:
        predicted = scoring.predicted_classes(probabilities)
        table = scoring.confusion(predicted, split.y_eval, config.schema.num_classes)
        score = scoring.scores_percent(table)[config.gate.metric]
    champion = Champion(served, served, score, predicted=predicted)
    log.step("champion", f"v{served} {_metric(config)}{champion.score:.2f}% on the same eval rows")
    return champion


def _no_champion(champion: Champion, log: RunLog) -> Champion:
    log.step("champion", f"{champion.absent}, the accuracy floor alone decides")
    return champion


def judge(config: Config, split: tables.Split, evaluation: Evaluation, champion: Champion,
          log: RunLog) -> tuple[stats.Paired | None, list[gate.SliceResult], gate.Decision]:
    """The gate's evidence, from both models' predicted classes on the same eval rows (the paired
    test by ``gate.metric``, overall and per slice), and its decision. A candidate without
    usable answers has none: the reload check rejects it."""
    paired_test, slice_results = None, []
    if evaluation.predicted is not None:
        truth, mine, theirs = split.y_eval, evaluation.predicted, champion.predicted
        if theirs is not None:
            paired_test = scoring.paired(config.gate.metric, truth, mine, theirs)
        columns = {name: values.tolist() for name, values in
                   tables.columns(config.schema, split.x_eval, split.text_eval).items()}  # by feature name
        for f in config.schema.features:
            if f.temporal:  # a date is sliced by its calendar month (YYYY-MM)
                columns[f.name] = [v[:7] for v in columns[f.name]]
        slice_results = slices.score(config.gate, columns, truth.tolist(), mine.tolist(),
                                     None if theirs is None else theirs.tolist())
    _log_evidence(log, paired_test, slice_results)
    floor = regression.floor(config.gate, evaluation.score) if config.schema.label.is_number else None
    decision = gate.decide(config.gate, evaluation.score, paired_test, len(split.y_eval),
                           evaluation.sanity_error, champion.absent, slice_results, floor)
    return paired_test, slice_results, decision


def _log_evidence(log: RunLog, paired_test: stats.Paired | None, slice_results: list[gate.SliceResult]) -> None:
    """The paired test and every slice, in the run log (shown, not numbered)."""
    if paired_test is not None:
        unit = paired_test.unit
        log.note(f"  paired: candidate {paired_test.candidate_percent:.2f}{unit} vs champion "
                 f"{paired_test.champion_percent:.2f}{unit} on {paired_test.rows} rows, {paired_test.summary()}")
    for s in slice_results:
        unit = "" if s.paired_test is None else s.paired_test.unit
        versus = "" if s.paired_test is None else (f" vs {s.paired_test.champion_percent:.2f}{unit}, "
                                                   f"p={s.paired_test.p_value:.3g}")
        log.note(f"  slice {s.name}: {s.rows} rows, {s.candidate_percent:.2f}{unit or '%'}{versus}: {s.verdict}")
