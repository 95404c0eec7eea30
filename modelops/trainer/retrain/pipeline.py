"""One gated retrain, start to finish, and the other store operations (rollback, train only).

``_retrain`` is the list of steps: ingest -> train (and reload the export) -> evaluate the
champion on the same eval rows -> gate (a paired test overall and per slice, docs/gate.md) ->
publish (atomic) or reject -> verify -> record. Every candidate keeps its lineage and a copy of
the config file it was trained with (``modelops.core.lineage``). Every
numbered step prints one progress line; the whole run, tracebacks included, goes to
``last_train_log.txt``. Any failure ends the run as ``failed`` without publishing (fail closed).
The writer lock is taken before the log is opened, so a second run that cannot get the lock
never clobbers the first one's log.

Every history record of a run carries its ``run_id`` and ``elapsed_seconds``, and the decision
record (promote, reject, failed) the ingest counts, so trainer metrics can be rebuilt from the
history alone. SIGINT/SIGTERM (``KeyboardInterrupt``) abort a run like a failure; they are held
back while a version is published or retired together with its record (``modelops.trainer.signals``),
so an interrupted run never leaves a served version without its decision in the history. A run
that lasts longer than ``schedule.max_run_seconds`` (counted from taking the lock) is aborted the
same way (SIGALRM) and recorded as failed (timed out); the lock is released as it unwinds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from modelops.core import history, lineage, stats
from modelops.core.config import Config
from modelops.core.errors import (
    ModelopsError,
    ServableError,
    ServingTimeout,
    ServingUnavailable,
    StoreError,
    VerifyError,
)
from modelops.core.exit_codes import ExitCode
from modelops.core.history import Event, Outcome
from modelops.core.notify import notify
from modelops.core.schema import recorded_schema
from modelops.core.store import ModelStore, write_json_atomic
from modelops.core.timestamps import now_iso, run_id
from modelops.trainer import batch_drift, compare, drift, gate, rollout_control, scoring, signals, slices, triggers
from modelops.trainer import lineage as run_lineage
from modelops.trainer.data import dataset as data

if TYPE_CHECKING:
    from modelops.trainer.model.training import Candidate

# The numbered steps, in order: the progress lines count them ([3/7] train: ...).
DATA_STEPS = ("ingest", "data")
TRAIN_STEPS = (*DATA_STEPS, "train", "evaluate")
GATED_STEPS = (*TRAIN_STEPS, "champion", "gate")
VERIFIED_STEPS = (*GATED_STEPS, "verify")


@dataclass(frozen=True)
class RunResult:
    outcome: Outcome
    version: int | None
    message: str

    @property
    def exit_code(self) -> ExitCode:
        codes = {Outcome.PROMOTED: ExitCode.OK, Outcome.REJECTED: ExitCode.REJECTED}
        return codes.get(self.outcome, ExitCode.FAILED)


class RunLog:
    """Progress lines to the console, everything to the run log file."""

    def __init__(self, path: Path, steps: tuple[str, ...], echo: Callable[[str], None] = print):
        self.path, self.steps, self.echo = path, steps, echo
        self._fh: IO[str] | None = None
        self._broken = False

    def __enter__(self) -> RunLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 (closed in __exit__)
        return self

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):  # a full disk, already reported by detail()
                self._fh.close()

    def step(self, name: str, message: str) -> None:
        """The progress line of step ``name``, numbered by its place in ``steps``."""
        self.note(f"[{self.steps.index(name) + 1}/{len(self.steps)}] {name}: {message}")

    def note(self, message: str) -> None:
        """A progress line within a step: shown and logged, not numbered."""
        self.echo(message)
        self.detail(message)

    def detail(self, message: str) -> None:
        """Log a line; a run log that cannot be written (disk full) is reported once, never fatal."""
        assert self._fh is not None, "RunLog used outside its with block"
        try:
            self._fh.write(f"{now_iso()} {message}\n")
            self._fh.flush()
        except OSError as exc:
            if not self._broken:
                self._broken = True
                self.echo(f"warning: the run log {self.path} could not be written ({exc.strerror or exc})")


# verifier(config, version, eval rows, the gate's predictions for them, log): returns when serving
# answers like the gated model; raises VerifyError when it does not, ServingUnavailable or
# ServingTimeout when serving never answered at all. The rows: a packed schema's float matrix,
# else typed rows by feature name (data.typed_rows).
Verifier = Callable[[Config, int, "np.ndarray | list[dict]", np.ndarray, RunLog], None]
NOTIFY_LABELS = {Event.PROMOTE: "promoted", Event.REJECT: "rejected"}


@dataclass(frozen=True)
class Evaluation:
    """A trained candidate scored through its reloaded export on the eval rows.

    The probabilities are kept: verification compares what serving answers with them.
    """

    candidate: Candidate
    probabilities: np.ndarray
    accuracy: float  # the gate.metric score, in percent
    sanity_error: str | None
    scores: dict[str, float] = dataclasses.field(default_factory=dict)  # every metric (modelops.trainer.scoring)
    confusion: np.ndarray | None = None  # [true class, predicted class] counts
    # per eval row, the predicted class index (the paired test's input; correct where it equals the
    # label); None when the export answered no usable probabilities
    predicted: np.ndarray | None = None


@dataclass(frozen=True)
class Champion:
    """The served version the candidate must not regress from, or why there is none."""

    served: int | None  # the version TF Serving serves now
    version: int | None  # ``served`` if it could be evaluated, else None: the floor alone decides
    accuracy: float | None
    absent: str = "no champion yet"
    predicted: np.ndarray | None = None  # per eval row, its predicted class index, when evaluated

    def versus(self) -> str:
        return f" vs champion v{self.version} {self.accuracy:.2f}%" if self.version is not None else ""


@dataclass(frozen=True)
class Gated:
    """A candidate and what the gate measured and decided about it in this run."""

    version: int
    run_dir: Path
    evaluation: Evaluation
    champion: Champion
    decision: gate.Decision
    dataset: data.Dataset
    split: data.Split
    comparison: stats.Paired | None  # candidate vs champion on the eval rows
    slices: list[gate.SliceResult]
    lineage: dict

    def summary(self) -> str:
        """``v<N> <accuracy>%[ vs champion ...]: <reasons>`` for the decision record's message."""
        return (f"v{self.version} {self.evaluation.accuracy:.2f}%{self.champion.versus()}: "
                f"{'; '.join(self.decision.reasons)}")


class _Run:
    """One retrain's identity, clock and ingest counts, stamped on every record it writes."""

    def __init__(self, config: Config, log: RunLog, trigger: str | None = None):
        self.config, self.log = config, log
        self.id = run_id()
        self.started = time.monotonic()
        self.ingest: data.IngestReport | None = None
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
        return _record(self.config, event, message, run_id=self.id,
                       elapsed_seconds=round(time.monotonic() - self.started, 3), **fields)


def _record(config: Config, event: Event, message: str, **fields) -> dict:
    """One decision: a history record plus its notification line (and webhook)."""
    record = history.append(config.history_path, event, model_name=config.model_name, **fields)
    notify(config.notifications_path, NOTIFY_LABELS.get(event, event), f"{config.model_name} {message}", record)
    return record


def record_killed_run(config: Config, run_id: str, message: str) -> dict:
    """The ``failed`` record of a run killed before it could write its own (the scheduler's backstop)."""
    return _record(config, Event.FAILED, message, run_id=run_id, version=None, reasons=[message])


def _stop_reason(config: Config) -> str:
    if signals.timed_out():
        return f"timed out (the run passed schedule.max_run_seconds={config.schedule.max_run_seconds:g})"
    return "interrupted (SIGINT/SIGTERM)"


def retrain(config: Config, wait_seconds: float = 0.0, echo=print, verifier: Verifier | None = None,
            trigger: str | None = None) -> RunResult:
    """Run one gated retrain under the writer lock; never raises for a failed step.

    ``trigger``: what started it (the trainer service's schedule.triggers), recorded with the run."""
    store = ModelStore(config.models_dir)
    waiting = f"waiting up to {wait_seconds:g}s for the writer lock"
    with store.lock(wait_seconds, on_wait=lambda holder: echo(f"{waiting} ({holder})")), \
            RunLog(config.train_log_path, GATED_STEPS if verifier is None else VERIFIED_STEPS, echo) as log, \
            signals.deadline(config.schedule.max_run_seconds):
        run = _Run(config, log, trigger)
        log.detail(f"retrain {run.id} of {config.model_name} in {config.root}"
                   + (f" (trigger: {trigger})" if trigger else ""))
        try:
            return _retrain(config, store, run, verifier)
        except (Exception, KeyboardInterrupt) as exc:  # fail closed: record and report, publish nothing
            log.detail(traceback.format_exc())
            if isinstance(exc, KeyboardInterrupt) or signals.interrupted() or signals.timed_out():
                message = f"{_stop_reason(config)} before publishing; nothing was published"
            else:
                message = str(exc) if isinstance(exc, ModelopsError) else f"{type(exc).__name__}: {exc}"
            try:
                run.record(Event.FAILED, f"retrain {run.id}: {message}", version=None, reasons=[message],
                           **run.ingest_counts(), **run.evidence)
            except StoreError as exc:  # the history is unwritable too: still tell a person, never a traceback
                message = f"{message}; this failure could not be recorded either: {exc}"
                notify(config.notifications_path, "failed", f"{config.model_name} retrain {run.id}: {message}")
            log.detail(f"FAILED: {message}")
            return RunResult(Outcome.FAILED, None, message)


def _retrain(config: Config, store: ModelStore, run: _Run, verifier: Verifier | None) -> RunResult:
    before = batch_drift.accepted_names(config)
    run.ingest, dataset, split = _ingest(config, store, run.log)
    run.evidence.update(batch_drift.at_ingest(config, store, before, run.log.note))
    version = store.reserve_version()
    run_dir = config.runs_dir / f"{run.id}-v{version}"
    evaluation = train_and_evaluate(config, split, run_dir, f"v{version}", run.log)
    champion = _evaluate_champion(config, store, split, run.log)
    comparison, slice_results, decision = _judge(config, split, evaluation, champion, run.log)
    lineage.keep_config(config, evaluation.candidate.path)  # moves with the candidate when published
    gated = Gated(version, run_dir, evaluation, champion, decision, dataset, split, comparison, slice_results,
                  run_lineage.collect(config, dataset, split, champion.served))
    if not decision.promote:
        return _reject(run, gated)
    return _publish_and_verify(run, store, gated, verifier)


def _judge(config: Config, split: data.Split, evaluation: Evaluation, champion: Champion,
           log: RunLog) -> tuple[stats.Paired | None, list[gate.SliceResult], gate.Decision]:
    """The gate's evidence, from both models' predicted classes on the same eval rows (the paired
    comparison by ``gate.metric``, overall and per slice), and its decision. A candidate without
    usable answers has none: the reload check rejects it."""
    comparison, slice_results = None, []
    if evaluation.predicted is not None:
        truth, mine, theirs = split.y_eval, evaluation.predicted, champion.predicted
        if theirs is not None:
            comparison = scoring.paired(config.gate.metric, truth, mine, theirs)
        columns = {name: values.tolist() for name, values in
                   data.columns(config.schema, split.x_eval, split.text_eval).items()}  # by feature name
        slice_results = slices.score(config.gate, columns, truth.tolist(), mine.tolist(),
                                     None if theirs is None else theirs.tolist())
    _log_evidence(log, comparison, slice_results)
    decision = gate.decide(config.gate, evaluation.accuracy, comparison, len(split.y_eval),
                           evaluation.sanity_error, champion.absent, slice_results)
    return comparison, slice_results, decision


def _log_evidence(log: RunLog, comparison: stats.Paired | None, slice_results: list[gate.SliceResult]) -> None:
    """The paired comparison and every slice, in the run log (shown, not numbered)."""
    if comparison is not None:
        log.note(f"  paired: candidate {comparison.candidate_percent:.2f}% vs champion "
                 f"{comparison.champion_percent:.2f}% on {comparison.rows} rows, {comparison.summary()}")
    for s in slice_results:
        versus = "" if s.comparison is None else (f" vs {s.comparison.champion_percent:.2f}%, "
                                                  f"p={s.comparison.p_value:.3g}")
        log.note(f"  slice {s.name}: {s.rows} rows, {s.candidate_percent:.2f}%{versus}: {s.verdict}")


def _ingest(config: Config, store: ModelStore, log: RunLog) -> tuple[data.IngestReport, data.Dataset, data.Split]:
    """Clean up after crashed runs, ingest new batches, load and split the dataset."""
    stale = store.clean_stale()
    _record_unrecorded(config, store, log)
    report = data.ingest(config)
    log.step(
        "ingest",
        f"{len(report.accepted)} batch(es) accepted ({report.rows_accepted} rows), "
        f"{len(report.quarantined)} quarantined"
        + (", synthetic bootstrap data written" if report.bootstrapped else "")
        + (f", {len(report.waiting)} still being written (left for the next run)" if report.waiting else "")
        + (f", removed stale {', '.join(stale)}" if stale else ""),
    )
    for name, ignored in report.ignored:
        log.note(f"accepted {name}: ignored its columns {', '.join(ignored)} (not declared in config.json features)")
    for name, reason in report.quarantined:
        log.detail(f"quarantined {name}: {reason}")
        notify(config.notifications_path, "quarantined", f"data batch {name}: {reason}",
               {"event": "quarantined", "file": name, "reasons": [reason]})
    dataset = data.load_dataset(config)
    split = data.split(dataset, config.data.eval_percent, data.split_key(config))
    log.step("data", f"{len(dataset)} rows from {len(dataset.files)} batch(es), {len(split.y_train)} train / "
                     f"{len(split.y_eval)} eval, fingerprint {dataset.fingerprint} ({dataset.duplicates} duplicate "
                     f"rows dropped, {len(dataset.left_out)} older batch(es) outside data.window)")
    return report, dataset, split


def _record_unrecorded(config: Config, store: ModelStore, log: RunLog) -> None:
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
        _record(config, Event.PROMOTE, f"v{version} {metrics.get('test_accuracy_percent')}%: {reason}",
                version=version, run_id=metrics.get("run_id"), accuracy_percent=metrics.get("test_accuracy_percent"),
                threshold_percent=gate_result.get("threshold_percent"),
                reasons=[*gate_result.get("reasons", []), reason])
        log.detail(f"v{version} was served without its promote record; recorded it from its metrics.json")


def train_and_evaluate(config: Config, split: data.Split, run_dir: Path, label: str, log: RunLog) -> Evaluation:
    """Train, export, reload the export and score it on the eval rows through its signature."""
    from modelops.trainer.model import network as model
    from modelops.trainer.model import training as train  # TensorFlow loads only when a run needs it

    schema = config.schema
    candidate = train.train_candidate(config.train, split, run_dir / "candidate", schema, config.train_module_path)
    log.step("train", f"{label}, loss {candidate.training_loss:.4f}, "
                      f"{config.train.epochs} epochs in {candidate.seconds:.1f}s"
                      + (f", model from {config.train.module}" if config.train.module else ""))
    probabilities = model.predict(model.load_signature(candidate.path), split.x_eval, schema, split.text_eval)
    width = 1 if schema.packed else schema.num_classes
    sanity_error = _sanity_error(probabilities, (len(split.y_eval), width))
    if sanity_error:
        log.step("evaluate", f"{label} answers no usable probabilities: {sanity_error}")
        return Evaluation(candidate, probabilities, 0.0, sanity_error)
    predicted = scoring.predicted_classes(probabilities)
    table = scoring.confusion(predicted, split.y_eval, schema.num_classes)
    scores = scoring.scores_percent(table)
    accuracy = scores[config.gate.metric]
    log.step("evaluate", f"{label} {_metric(config)}{accuracy:.2f}% on {len(split.y_eval)} eval rows")
    return Evaluation(candidate, probabilities, accuracy, None, scores, table, predicted)


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


def _evaluate_champion(config: Config, store: ModelStore, split: data.Split, log: RunLog) -> Champion:
    """Score the served version on the same eval rows, through the signature TF Serving runs: its own,
    fed from the rows its own schema reads (the config's may have changed since it was trained)."""
    from modelops.trainer.model import network as model

    served = store.latest()
    if served is None:
        champion = Champion(None, None, None)
        log.step("champion", f"{champion.absent}, the accuracy floor alone decides")
        return champion
    own = recorded_schema(store.metrics(served))
    gap = own.scoring_gap(config.schema) if own is not None else "its recorded schema cannot be read"
    if own is not None and not gap:
        x, text = data.relayout(config.schema, own, split.x_eval, split.text_eval)
        if any(np.isnan(x[:, i]).any() for i, f in enumerate(own.numeric) if not f.optional):
            gap = "the eval rows miss values it requires"
    if gap:
        champion = Champion(served, None, None, f"served v{served} was trained on another schema ({gap}): "
                                                "comparison skipped")
        log.step("champion", f"{champion.absent}, the accuracy floor alone decides")
        return champion
    try:
        probabilities = model.predict(model.load_signature(store.path(served)), x, own, text)
    except ServableError as exc:
        # TF Serving cannot answer with this export either (e.g. one saved before ExportArchive):
        # there is no working model to protect, so it is no champion and the floor decides.
        first = (exc.message.splitlines() or [""])[0].split(". ")[0]
        champion = Champion(served, None, None, f"served v{served} cannot answer ({exc.code}: {first})")
        log.step("champion", f"{champion.absent}, the accuracy floor alone decides")
        return champion
    except Exception as exc:
        raise StoreError(
            f"could not evaluate the serving champion v{served}: {exc}; "
            "retire it with 'retrain_pipeline.py rollback' and retrain"
        ) from exc
    predicted = scoring.predicted_classes(probabilities)
    table = scoring.confusion(predicted, split.y_eval, config.schema.num_classes)
    champion = Champion(served, served, scoring.scores_percent(table)[config.gate.metric], predicted=predicted)
    log.step("champion", f"v{served} {_metric(config)}{champion.accuracy:.2f}% on the same eval rows")
    return champion


def _reject(run: _Run, gated: Gated) -> RunResult:
    """Keep the candidate in ``runs/`` for inspection, outside the served path, and record why."""
    reasons = "; ".join(gated.decision.reasons)
    write_json_atomic(gated.run_dir / "metrics.json", _metrics(run.config, run.id, gated))
    served = gated.champion.served
    keeps = f"v{served} keeps serving" if served is not None else "nothing is served yet"
    run.record(Event.REJECT, f"{gated.summary()}; {keeps}", **_decision_fields(run, gated))
    run.log.step("gate", f"REJECTED v{gated.version}: {reasons} (kept in {gated.run_dir})")
    return RunResult(Outcome.REJECTED, gated.version, reasons)


def _publish_and_verify(run: _Run, store: ModelStore, gated: Gated, verifier: Verifier | None) -> RunResult:
    """Publish, then have serving confirm it; roll back what serving disagrees with."""
    version, config = gated.version, run.config
    promoted = RunResult(Outcome.PROMOTED, version, f"v{version} {gated.evaluation.accuracy:.2f}%")
    first = gated.champion.served is None  # nothing was published: TF Serving may not even run yet
    try:
        _publish(run, store, gated)
        if verifier is None:
            return promoted
        verifier(_asking_once(config) if first else config, version, _verification_rows(config, gated.split),
                 gated.evaluation.probabilities, run.log)
    except KeyboardInterrupt:
        if not store.path(version).is_dir():
            raise  # interrupted before the publish block: nothing was published
        return _unverified(run, promoted, f"{_stop_reason(run.config)} before verification finished")
    except VerifyError as exc:
        return _roll_back_unverifiable(run, store, version, str(exc))
    except (ServingUnavailable, ServingTimeout) as exc:
        if first:
            return _deferred(run, promoted, str(exc))
        if config.verify.on_unreachable == "fail":
            return _roll_back_unverifiable(run, store, version, f"{exc} (verify.on_unreachable is fail)")
        return _unverified(run, promoted, str(exc))
    verified = _record_verified(run, promoted, len(gated.split.y_eval))
    compare.after_promotion(config, version, run.log)  # for the model page; never raises
    return verified


def _publish(run: _Run, store: ModelStore, gated: Gated) -> None:
    """Publish the candidate and record the promotion, with stop signals held until both are done.

    A version is never served without its record: if the history cannot be written (disk full,
    read-only), the version leaves the served path again and the run fails saying why.
    """
    n = run.config.verify.rows
    rows = _verification_rows(run.config, gated.split)[:n]
    metrics = {**_metrics(run.config, run.id, gated), "promoted_at": now_iso(),
               "verification": {"rows": rows.tolist() if isinstance(rows, np.ndarray) else rows,
                                "expected": np.asarray(gated.evaluation.probabilities[:n]).tolist()}}
    candidate, version = gated.evaluation.candidate, gated.version
    with signals.held():
        rollout_control.before_publish(run.config, store, gated.version)  # shadow/canary: loads beside the champion
        store.publish(candidate.path, gated.version, metrics)
        shutil.rmtree(candidate.path, ignore_errors=True)
        try:
            run.record(Event.PROMOTE, gated.summary(), **_decision_fields(run, gated))
        except StoreError as exc:
            store.retire(version)
            raise StoreError(
                f"v{version} passed the gate but its promote record could not be written ({exc}); v{version} was "
                "retired so that no version is served without its record; free space or fix the permissions and "
                "retrain"
            ) from exc
        run.log.step("gate", f"PROMOTED v{version} to {store.path(version)}")


def _record_verified(run: _Run, promoted: RunResult, eval_rows: int) -> RunResult:
    verify = run.config.verify
    checked = f"{min(verify.rows, eval_rows)} eval rows within {verify.tolerance:g}"
    run.record(Event.VERIFIED, f"v{promoted.version} verified: TF Serving answers like the gated model",
               version=promoted.version, reasons=[checked])
    run.log.step("verify", f"v{promoted.version} is served and answers like the gated model")
    return dataclasses.replace(promoted, message=f"{promoted.message}, verified")


def _unverified(run: _Run, promoted: RunResult, reason: str) -> RunResult:
    run.record(Event.UNVERIFIED, f"v{promoted.version} promoted but NOT verified: {reason}",
               version=promoted.version, reasons=[reason])
    run.log.step("verify", f"WARNING v{promoted.version} is promoted but unverified: {reason}")
    return dataclasses.replace(promoted, message=f"{promoted.message}, UNVERIFIED: {reason}")


def _verification_rows(config: Config, split: data.Split) -> np.ndarray | list[dict]:
    """The eval rows as verification sends them: the float matrix (packed schema) or typed rows by name."""
    schema = config.schema
    return split.x_eval if schema.packed else data.typed_rows(schema, split.x_eval, split.text_eval)


def _asking_once(config: Config) -> Config:
    """``config`` whose verification asks an absent serving once instead of waiting for it."""
    return dataclasses.replace(config, verify=dataclasses.replace(config.verify, unreachable_seconds=0.0))


def _deferred(run: _Run, promoted: RunResult, reason: str) -> RunResult:
    """A first model, published before anything could serve it: the trainer service verifies it later."""
    run.log.step("verify", f"v{promoted.version} is the first model and TF Serving does not answer yet ({reason}); "
                           "the trainer service verifies it once serving is up ('retrain_pipeline.py verify')")
    return dataclasses.replace(promoted, message=f"{promoted.message}, verification pending")


def pending_verification(config: Config, store: ModelStore) -> int | None:
    """The served version if its promotion has no verification record after it yet, else None."""
    served = store.latest()
    if served is None:
        return None
    follow_ups = {Event.PROMOTE, Event.VERIFIED, Event.UNVERIFIED, Event.VERIFY_FAILED, Event.ROLLBACK}
    last = None
    for record in history.read(config.history_path):
        if record.get("version") == served and record.get("event") in follow_ups:
            last = record["event"]
    return served if last == Event.PROMOTE else None


def verify_pending(config: Config, verifier: Verifier, wait_seconds: float = 0.0, echo=print) -> RunResult | None:
    """Verify the served version if it has no verification record yet, with the rows and answers its
    publication kept in metrics.json; roll it back if serving disagrees. None: nothing to verify."""
    store = ModelStore(config.models_dir)
    waiting = f"waiting up to {wait_seconds:g}s for the writer lock"
    with store.lock(wait_seconds, on_wait=lambda holder: echo(f"{waiting} ({holder})")), \
            RunLog(config.runs_dir / "last_verify_log.txt", ("verify",), echo) as log:
        version = pending_verification(config, store)
        kept = (store.metrics(version) or {}).get("verification") if version is not None else None
        if version is None or not kept:
            return None
        run = _Run(config, log)
        promoted = RunResult(Outcome.PROMOTED, version, f"v{version}")
        rows = kept["rows"]  # typed rows by feature name stay as they are; packed rows are a float matrix
        try:
            verifier(config, version, rows if rows and isinstance(rows[0], dict) else np.asarray(rows, np.float32),
                     np.asarray(kept["expected"]), log)
        except VerifyError as exc:
            return _roll_back_unverifiable(run, store, version, str(exc))
        except (ServingUnavailable, ServingTimeout) as exc:
            return _unverified(run, promoted, str(exc))
        return _record_verified(run, promoted, len(kept["rows"]))


def _roll_back_unverifiable(run: _Run, store: ModelStore, version: int, reason: str) -> RunResult:
    run.record(Event.VERIFY_FAILED, f"v{version} failed verification: {reason}", version=version, reasons=[reason])
    served = _retire(run.config, store, [version], f"v{version} failed verification", run)
    now = f"v{served} serves again" if served is not None else "no version is served now"
    run.log.step("verify", f"FAILED for v{version}, rolled back ({now}): {reason}")
    return RunResult(Outcome.ROLLED_BACK, version,
                     f"v{version} failed verification and was retired ({now}): {reason}")


def _decision_fields(run: _Run, gated: Gated) -> dict:
    """The fields of a promote or reject record, beside its run id and clock."""
    champion, evaluation = gated.champion, gated.evaluation
    return dict(
        version=gated.version, accuracy_percent=round(evaluation.accuracy, 4),
        threshold_percent=gated.decision.threshold_percent, champion_version=champion.version,
        champion_accuracy_percent=None if champion.accuracy is None else round(champion.accuracy, 4),
        eval_rows=len(gated.split.y_eval), data_fingerprint=gated.dataset.fingerprint,
        comparison=_comparison_record(run.config, gated), reasons=list(gated.decision.reasons), **run.ingest_counts(),
        **run.evidence,
    )


def _comparison_record(config: Config, gated: Gated) -> dict | None:
    return None if gated.comparison is None else gated.comparison.record(config.gate.significance)


def _metrics(config: Config, run_id: str, gated: Gated) -> dict:
    """The candidate's ``metrics.json``: how it was trained, on what, and what the gate decided."""
    candidate, dataset, split = gated.evaluation.candidate, gated.dataset, gated.split
    champion, decision = gated.champion, gated.decision
    return {
        "model_name": config.model_name,
        "version": gated.version,
        "test_accuracy_percent": round(gated.evaluation.accuracy, 4),
        "training_loss": round(candidate.training_loss, 6),
        "training_accuracy_percent": round(candidate.training_accuracy_percent, 4),
        "trained_at": now_iso(),
        "run_id": run_id,
        "dataset": {
            "rows": len(dataset),
            "train_rows": len(split.y_train),
            "eval_rows": len(split.y_eval),
            "class_counts": dict(zip(config.schema.label.class_names,
                                     np.bincount(dataset.y.astype(np.int64), minlength=config.schema.num_classes)
                                     .tolist(), strict=True)),
            **({"positive_fraction": round(float(dataset.y.mean()), 4)} if config.schema.num_classes == 2 else {}),
            "fingerprint": dataset.fingerprint,
            "files": list(dataset.files),
            "left_out": list(dataset.left_out),
            "duplicate_rows_dropped": dataset.duplicates,
        },
        "champion": None if champion.version is None or champion.accuracy is None
        else {"version": champion.version, "accuracy_percent": round(champion.accuracy, 4)},
        "gate": {"promote": decision.promote, "reasons": list(decision.reasons),
                 "threshold_percent": decision.threshold_percent, "metric": config.gate.metric,
                 "comparison": _comparison_record(config, gated),
                 "slices": [s.record() for s in gated.slices]},
        "scores_percent": {name: round(value, 4) for name, value in gated.evaluation.scores.items()},
        "confusion": None if gated.evaluation.confusion is None
        else scoring.confusion_record(gated.evaluation.confusion, config.schema.label.class_names),
        "schema": config.schema.to_config(),
        "lineage": gated.lineage,
        "config": {"train": dataclasses.asdict(config.train), "gate": dataclasses.asdict(config.gate)},
        "reference": _reference(config, dataset, split),
    }


def _reference(config: Config, dataset: data.Dataset, split: data.Split) -> dict:
    """The training rows' statistics that batches and live traffic are scored against (docs/drift.md)."""
    rows = drift.table(config.schema, split.x_train, split.y_train, split.text_train)
    return {**drift.reference(config.schema, rows, config.drift.bins),
            "bytes_per_row": triggers.bytes_per_row(config, dataset)}


def train_only(config: Config, echo=print) -> Path:
    """Train and evaluate a candidate into ``runs/`` without gating or publishing it."""
    store = ModelStore(config.models_dir)
    with store.lock(), RunLog(config.train_log_path, TRAIN_STEPS, echo=echo) as log:
        run_dir = config.runs_dir / f"{run_id()}-train"
        _, _, split = _ingest(config, store, log)
        evaluation = train_and_evaluate(config, split, run_dir, "candidate", log)
        write_json_atomic(run_dir / "metrics.json", {
            "test_accuracy_percent": round(evaluation.accuracy, 4),
            "training_loss": round(evaluation.candidate.training_loss, 6),
        })
        return evaluation.candidate.path


def rollback(config: Config, to_version: int | None = None, reason: str = "manual rollback",
             wait_seconds: float = 0.0) -> tuple[list[int], int | None]:
    """Retire the top version (or every version above ``to_version``); return (retired, now served)."""
    store = ModelStore(config.models_dir)
    with store.lock(wait_seconds):
        versions = store.versions()
        if to_version is None:
            if len(versions) < 2:
                raise StoreError(f"nothing to roll back to: served versions are {versions or 'none'}")
            to_version = versions[-2]
        elif to_version not in versions:
            raise StoreError(f"version {to_version} is not served; served versions: {versions}")
        retired = [v for v in reversed(versions) if v > to_version]
        if not retired:
            raise StoreError(f"v{to_version} is already the served version")
        return retired, _retire(config, store, retired, reason)


def _retire(config: Config, store: ModelStore, versions: list[int], reason: str,
            run: _Run | None = None) -> int | None:
    """Retire ``versions`` (highest first) with a rollback record each; return the version served now."""
    with signals.held():
        for v in versions:
            store.retire(v)
        served = store.latest()
        again = f"v{served} serves again" if served is not None else "no version is served now"
        for v in versions:
            fields = dict(version=v, to_version=served, reasons=[reason])
            message = f"retired v{v}; {again}: {reason}"
            if run:
                run.record(Event.ROLLBACK, message, **fields)
            else:
                _record(config, Event.ROLLBACK, message, **fields)
        rollout_control.sync(config, store)
    return served
