"""One gated retrain, start to finish (``retrain``), and a candidate trained without the gate (``train_only``).

``_retrain`` is the list of steps: ingest -> train (and reload the export) -> evaluate the
champion on the same eval rows -> gate (a paired test overall and per slice, docs/gate.md) ->
publish (atomic) or reject -> verify -> record. Every candidate keeps its lineage and a copy of
the config file it was trained with (``modelops.trainer.lineage``). Every numbered step prints one
progress line; the whole run, tracebacks included, goes to ``last_train_log.txt``. Any failure
ends the run as ``failed`` without publishing (fail closed). The writer lock is taken before the
log is opened, so a second run that cannot get the lock never clobbers the first one's log.

SIGINT/SIGTERM (``KeyboardInterrupt``) abort a run like a failure; they are held back while a
version is published or retired together with its record (``modelops.trainer.signals``), so an
interrupted run never leaves a served version without its decision in the history. A run that
lasts longer than ``schedule.max_run_seconds`` (counted from taking the lock) is aborted the same
way (SIGALRM) and recorded as failed (timed out); the lock is released as it unwinds.
"""

from __future__ import annotations

import traceback
from pathlib import Path

from modelops.core.config import Config
from modelops.core.errors import ModelopsError, StoreError
from modelops.core.history import Event, Outcome
from modelops.core.notify import notify
from modelops.core.store import ModelStore, write_json_atomic
from modelops.core.timestamps import run_id
from modelops.core.untrusted import quoted
from modelops.trainer import batch_drift, lineage, retention, signals
from modelops.trainer.data import holdout, inbox, tables, windowed
from modelops.trainer.retrain import freshness, reasons
from modelops.trainer.retrain.evaluation import Gated, evaluate_champion, judge, train_and_evaluate
from modelops.trainer.retrain.publish import publish_and_verify
from modelops.trainer.retrain.records import Run, RunResult, decision_fields, metrics_json, record_unrecorded
from modelops.trainer.retrain.runlog import RunLog
from modelops.trainer.retrain.verify import Verifier

# The numbered steps, in order: the progress lines count them ([3/7] train: ...).
DATA_STEPS = ("ingest", "data")
TRAIN_STEPS = (*DATA_STEPS, "train", "evaluate")
GATED_STEPS = (*TRAIN_STEPS, "champion", "gate")
VERIFIED_STEPS = (*GATED_STEPS, "verify")


def retrain(config: Config, wait_seconds: float = 0.0, echo=print, verifier: Verifier | None = None,
            trigger: str | None = None, force: bool = False) -> RunResult:
    """Run one gated retrain under the writer lock; never raises for a failed step.

    ``trigger``: what started it (the trainer service's schedule.triggers), recorded with the run.
    ``force``: train even when nothing is new since the served version (``freshness``)."""
    store = ModelStore(config.models_dir)
    waiting = f"waiting up to {wait_seconds:g}s for the writer lock"
    with store.lock(wait_seconds, on_wait=lambda holder: echo(f"{waiting} ({holder})")), \
            RunLog(config.train_log_path, GATED_STEPS if verifier is None else VERIFIED_STEPS, echo) as log, \
            signals.deadline(config.schedule.max_run_seconds):
        run = Run(config, log, trigger)
        log.detail(f"retrain {run.id} of {config.model_name} in {config.root}"
                   + (f" (trigger: {trigger})" if trigger else ""))
        try:
            return retention.after(_retrain(config, store, run, verifier, force), config, store, log.note)
        except (Exception, KeyboardInterrupt) as exc:  # fail closed: record and report, publish nothing
            log.detail(traceback.format_exc())
            return _failed(run, exc)


def _failed(run: Run, exc: BaseException) -> RunResult:
    """Record a run that ended by ``exc`` as ``failed``; nothing was published."""
    config = run.config
    if isinstance(exc, KeyboardInterrupt) or signals.interrupted() or signals.timed_out():
        message = f"{signals.stop_reason(config.schedule.max_run_seconds)} before publishing; nothing was published"
    else:
        message = str(exc) if isinstance(exc, ModelopsError) else f"{type(exc).__name__}: {exc}"
    try:
        run.record(Event.FAILED, f"retrain {run.id}: {message}", version=None, reasons=[message],
                   **run.ingest_counts(), **run.evidence)
    except StoreError as exc:  # the history is unwritable too: still tell a person, never a traceback
        message = f"{message}; this failure could not be recorded either: {exc}"
        notify(config.notifications_path, "failed", f"{config.model_name} retrain {run.id}: {message}")
    run.log.detail(f"FAILED: {message}")
    return RunResult(Outcome.FAILED, None, message)


def _retrain(config: Config, store: ModelStore, run: Run, verifier: Verifier | None, force: bool = False,
             ) -> RunResult:
    before = batch_drift.accepted_names(config)
    run.ingest, dataset, split = _ingest(config, store, run.log)
    run.evidence.update(batch_drift.at_ingest(config, store, before, run.log.note))
    unchanged = None if force else freshness.up_to_date(config, store, dataset)
    if unchanged:  # before a version number is reserved: nothing is used up
        run.record(Event.UP_TO_DATE, f"retrain {run.id}: {unchanged}", version=None, reasons=[unchanged],
                   **run.ingest_counts(), **run.evidence)
        run.log.note(unchanged)
        return RunResult(Outcome.UP_TO_DATE, None, unchanged)
    version = store.reserve_version()
    run_dir = config.runs_dir / f"{run.id}-v{version}"
    evaluation = train_and_evaluate(config, split, run_dir, f"v{version}", run.log)
    champion = evaluate_champion(config, store, split, run.log)
    paired_test, slice_results, decision = judge(config, split, evaluation, champion, run.log)
    decision = reasons.check(config, store, evaluation, champion, decision, run.log)
    lineage.keep_config(config, evaluation.candidate.path)  # moves with the candidate when published
    gated = Gated(version, run_dir, evaluation, champion, decision, dataset, split, paired_test, slice_results,
                  lineage.collect(config, dataset, split, champion.served))
    if not decision.promote:
        return _reject(run, gated)
    return publish_and_verify(run, store, gated, verifier)


def _ingest(config: Config, store: ModelStore, log: RunLog) -> tuple[inbox.IngestReport, tables.Dataset, tables.Split]:
    """Clean up after crashed runs, ingest new batches, load and split the dataset."""
    stale = store.clean_stale()
    record_unrecorded(config, store, log)
    report = inbox.ingest(config)
    log.step(
        "ingest",
        f"{len(report.accepted)} batch(es) accepted ({report.rows_accepted} rows), "
        f"{len(report.quarantined)} quarantined"
        + (", synthetic bootstrap data written" if report.bootstrapped else "")
        + (f", {len(report.waiting)} still being written (left for the next run)" if report.waiting else "")
        + (f", removed stale {', '.join(stale)}" if stale else ""),
    )
    if report.retired:
        log.note(f"retired the demo's synthetic batch(es) {', '.join(report.retired)}: config.json declares another "
                 f"table, so they moved from data/accepted/ to {config.data_dir / 'retired'}/ (kept, not deleted)")
    for name, ignored in report.ignored:
        log.note(f"accepted {quoted(name)}: ignored its columns {', '.join(map(quoted, ignored))} "
                 "(not declared in config.json features)")
    for name, reason in report.quarantined:
        log.note(f"quarantined {quoted(name)}: {first_reason(reason)}")  # on the console too, not only in the log
        log.detail(f"quarantined {quoted(name)}: {reason}")
        notify(config.notifications_path, "quarantined", f"data batch {quoted(name)}: {reason}",
               {"event": "quarantined", "file": name, "reasons": [reason]})
    dataset = windowed.load_dataset(config)
    split = holdout.split(dataset, config.data.eval_percent, holdout.split_key(config))
    log.step("data", f"{len(dataset)} rows from {len(dataset.files)} batch(es), {len(split.y_train)} train / "
                     f"{len(split.y_eval)} eval, fingerprint {dataset.fingerprint} ({dataset.duplicates} duplicate "
                     f"rows dropped, {len(dataset.left_out)} older batch(es) outside data.window)")
    return report, dataset, split


def first_reason(reason: str, limit: int = 160) -> str:
    """A quarantine reason's first sentence, short enough for one console line (the log has it all)."""
    first = reason.split("; ")[0]
    return first if len(first) <= limit else first[: limit - 3] + "..."


def _reject(run: Run, gated: Gated) -> RunResult:
    """Keep the candidate in ``runs/`` for inspection, outside the served path, and record why."""
    reasons = "; ".join(gated.decision.reasons)
    write_json_atomic(gated.run_dir / "metrics.json", metrics_json(run.config, run.id, gated))
    served = gated.champion.served
    keeps = f"v{served} keeps serving" if served is not None else "nothing is served yet"
    run.record(Event.REJECT, f"{gated.summary()}; {keeps}", **decision_fields(run, gated))
    run.log.step("gate", f"REJECTED v{gated.version}: {reasons} (kept in {gated.run_dir})")
    return RunResult(Outcome.REJECTED, gated.version, reasons)


def train_only(config: Config, echo=print) -> Path:
    """Train and evaluate a candidate into ``runs/`` without gating or publishing it."""
    store = ModelStore(config.models_dir)
    with store.lock(), RunLog(config.train_log_path, TRAIN_STEPS, echo=echo) as log:
        run_dir = config.runs_dir / f"{run_id()}-train"
        _, _, split = _ingest(config, store, log)
        evaluation = train_and_evaluate(config, split, run_dir, "candidate", log)
        write_json_atomic(run_dir / "metrics.json", {
            "test_accuracy_percent": round(evaluation.score, 4),
            "training_loss": round(evaluation.candidate.training_loss, 6),
        })
        return evaluation.candidate.path
