"""What a run leaves behind: history records with their notification lines, and ``metrics.json``.

Every history record of a run carries its ``run_id`` and ``elapsed_seconds``, and the decision
record (promote, reject, failed) the ingest counts, so trainer metrics can be rebuilt from the
history alone. The keys written here are read by the CLI, the frontend and older versions'
tools: they never change.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from modelops.core import history
from modelops.core.config import Config
from modelops.core.errors import ModelopsError
from modelops.core.exit_codes import ExitCode
from modelops.core.history import Event, Outcome
from modelops.core.notify import notify
from modelops.core.store import ModelStore
from modelops.core.timestamps import now_iso, run_id
from modelops.trainer import drift, regression, scoring, triggers
from modelops.trainer.data import inbox, tables
from modelops.trainer.retrain.evaluation import Gated
from modelops.trainer.retrain.runlog import RunLog

NOTIFY_LABELS = {Event.PROMOTE: "promoted", Event.REJECT: "rejected"}


@dataclass(frozen=True)
class RunResult:
    """What a run (or a late verification) decided, and the CLI's exit code for it."""

    outcome: Outcome
    version: int | None
    message: str

    @property
    def exit_code(self) -> ExitCode:
        codes = {Outcome.PROMOTED: ExitCode.OK, Outcome.REJECTED: ExitCode.REJECTED, Outcome.UP_TO_DATE: ExitCode.OK}
        return codes.get(self.outcome, ExitCode.FAILED)


class Run:
    """One retrain's identity, clock and ingest counts, stamped on every record it writes."""

    def __init__(self, config: Config, log: RunLog, trigger: str | None = None):
        self.config, self.log = config, log
        self.id = run_id()
        self.started = time.monotonic()
        self.ingest: inbox.IngestReport | None = None
        # what the new rows look like next to the serving version and what started the run (batch_drift)
        self.evidence: dict = {"trigger": trigger} if trigger else {}

    def ingest_counts(self) -> dict:
        report = self.ingest
        return {
            "rows_accepted": report.rows_accepted if report else 0,
            "batches_accepted": len(report.accepted) if report else 0,
            "batches_quarantined": len(report.quarantined) if report else 0,
        }

    def record(self, event: Event, message: str, **fields) -> dict:
        return record(self.config, event, message, run_id=self.id,
                      elapsed_seconds=round(time.monotonic() - self.started, 3), **fields)


def record(config: Config, event: Event, message: str, **fields) -> dict:
    """One decision: a history record plus its notification line (and webhook)."""
    entry = history.append(config.history_path, event, model_name=config.model_name, **fields)
    notify(config.notifications_path, NOTIFY_LABELS.get(event, event), f"{config.model_name} {message}", entry)
    return entry


def record_killed_run(config: Config, run_id: str, message: str) -> dict:
    """The ``failed`` record of a run killed before it could write its own (the scheduler's backstop)."""
    return record(config, Event.FAILED, message, run_id=run_id, version=None, reasons=[message])


def record_verified(run: Run, promoted: RunResult, eval_rows: int) -> RunResult:
    verify = run.config.verify
    checked = f"{min(verify.rows, eval_rows)} eval rows within {verify.tolerance:g}"
    run.record(Event.VERIFIED, f"v{promoted.version} verified: TF Serving answers like the gated model",
               version=promoted.version, reasons=[checked])
    run.log.step("verify", f"v{promoted.version} is served and answers like the gated model")
    return dataclasses.replace(promoted, message=f"{promoted.message}, verified")


def record_unverified(run: Run, promoted: RunResult, reason: str) -> RunResult:
    run.record(Event.UNVERIFIED, f"v{promoted.version} promoted but NOT verified: {reason}",
               version=promoted.version, reasons=[reason])
    run.log.step("verify", f"WARNING v{promoted.version} is promoted but unverified: {reason}")
    return dataclasses.replace(promoted, message=f"{promoted.message}, UNVERIFIED: {reason}")


def record_unrecorded(config: Config, store: ModelStore, log: RunLog) -> None:
    """Write the promote record of a served version whose run was killed between its rename and its
    record (SIGKILL, power loss). It passed the gate before the rename, and its ``metrics.json``
    says how, so recording it is right; retiring it would drop a good model."""
    try:
        recorded = {r.get("version") for r in history.read(config.history_path) if r.get("event") == Event.PROMOTE}
        _record_versions_without(recorded, config, store, log)
    except ModelopsError as exc:  # a repair must never stop the run: the record is written next time
        log.detail(f"could not check served versions for missing records: {exc}")


def _record_versions_without(recorded: set, config: Config, store: ModelStore, log: RunLog) -> None:
    for version in store.versions():
        metrics: dict = store.metrics(version) or {}
        gate_result = metrics.get("gate") if isinstance(metrics, dict) else None
        if version in recorded or not isinstance(gate_result, dict) or gate_result.get("promote") is not True:
            continue
        reason = "recorded by a later run: the run that published it stopped before writing its record"
        record(config, Event.PROMOTE, f"v{version} {metrics.get('test_accuracy_percent')}%: {reason}",
               version=version, run_id=metrics.get("run_id"), accuracy_percent=metrics.get("test_accuracy_percent"),
               threshold_percent=gate_result.get("threshold_percent"),
               reasons=[*gate_result.get("reasons", []), reason])
        log.detail(f"v{version} was served without its promote record; recorded it from its metrics.json")


def decision_fields(run: Run, gated: Gated) -> dict:
    """The fields of a promote or reject record, beside its run id and clock."""
    champion, evaluation = gated.champion, gated.evaluation
    return dict(
        version=gated.version, accuracy_percent=round(evaluation.score, 4),
        threshold_percent=gated.decision.threshold_percent, champion_version=champion.version,
        champion_accuracy_percent=None if champion.score is None else round(champion.score, 4),
        eval_rows=len(gated.split.y_eval), data_fingerprint=gated.dataset.fingerprint,
        comparison=_paired_test_record(run.config, gated), reasons=list(gated.decision.reasons),
        **run.ingest_counts(), **run.evidence,
    )


def _paired_test_record(config: Config, gated: Gated) -> dict | None:
    """The paired test, as records keep it (under the key ``comparison``)."""
    return None if gated.paired_test is None else gated.paired_test.record(config.gate.significance)


def metrics_json(config: Config, run_id: str, gated: Gated) -> dict:
    """The candidate's ``metrics.json``: how it was trained, on what, and what the gate decided."""
    candidate, dataset, split = gated.evaluation.candidate, gated.dataset, gated.split
    champion, decision = gated.champion, gated.decision
    return {
        "model_name": config.model_name,
        "version": gated.version,
        "test_accuracy_percent": round(gated.evaluation.score, 4),
        "training_loss": round(candidate.training_loss, 6),
        "training_accuracy_percent": None if math.isnan(candidate.training_accuracy_percent)
        else round(candidate.training_accuracy_percent, 4),
        "trained_at": now_iso(),
        "run_id": run_id,
        "dataset": _dataset_record(config, dataset, split),
        "champion": None if champion.version is None or champion.score is None
        else {"version": champion.version, "accuracy_percent": round(champion.score, 4)},
        "gate": {"promote": decision.promote, "reasons": list(decision.reasons),
                 "threshold_percent": decision.threshold_percent, "metric": config.gate.metric,
                 "comparison": _paired_test_record(config, gated),
                 "slices": [s.record() for s in gated.slices]},
        **_scores_record(config, gated),
        "schema": config.schema.to_config(),
        "lineage": gated.lineage,
        "config": {"train": dataclasses.asdict(config.train), "gate": dataclasses.asdict(config.gate)},
        "reference": _reference(config, dataset, split),
        "explanations": gated.evaluation.explanations,
    }


def _scores_record(config: Config, gated: Gated) -> dict:
    """Class labels: ``scores_percent`` and the ``confusion`` table; a number label: ``scores`` (rmse,
    mae in its units, r2) and ``values``, predicted vs actual on eval rows (the page's chart)."""
    evaluation = gated.evaluation
    if config.schema.label.is_number:
        return {"scores": {name: round(value, 6) for name, value in evaluation.scores.items()},
                "values": None if evaluation.predicted is None
                else regression.value_record(evaluation.predicted, gated.split.y_eval)}
    return {"scores_percent": {name: round(value, 4) for name, value in evaluation.scores.items()},
            "confusion": None if evaluation.confusion is None
            else scoring.confusion_record(evaluation.confusion, config.schema.label.class_names)}


def _label_counts(config: Config, dataset: tables.Dataset) -> dict:
    """The label's make-up: class counts (and the positive share of two classes), or a number's range."""
    y = dataset.y
    if config.schema.label.is_number:
        return {"label": {"mean": round(float(y.mean()), 6), "min": float(y.min()), "max": float(y.max())}}
    return {"class_counts": dict(zip(config.schema.label.class_names,
                                     np.bincount(y.astype(np.int64), minlength=config.schema.num_classes)
                                     .tolist(), strict=True)),
            **({"positive_fraction": round(float(y.mean()), 4)} if config.schema.num_classes == 2 else {})}


def _dataset_record(config: Config, dataset: tables.Dataset, split: tables.Split) -> dict:
    """``metrics.json``'s ``dataset``: the rows a candidate was trained and judged on."""
    return {
        "rows": len(dataset),
        "train_rows": len(split.y_train),
        "eval_rows": len(split.y_eval),
        **_label_counts(config, dataset),
        "fingerprint": dataset.fingerprint,
        "files": list(dataset.files),
        "left_out": list(dataset.left_out),
        "duplicate_rows_dropped": dataset.duplicates,
    }


def _reference(config: Config, dataset: tables.Dataset, split: tables.Split) -> dict:
    """The training rows' statistics that batches and live traffic are scored against (docs/drift.md)."""
    rows = drift.table(config.schema, split.x_train, split.y_train, split.text_train)
    return {**drift.reference(config.schema, rows, config.drift.bins),
            "bytes_per_row": triggers.bytes_per_row(config, dataset)}
