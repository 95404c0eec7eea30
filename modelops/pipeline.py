"""One gated retrain, start to finish, and the other store operations (rollback, status).

ingest -> load + split -> train candidate -> reload check -> evaluate candidate and champion on
the same eval rows -> gate -> publish (atomic) or reject -> verify -> record. Every step prints one
progress line; the whole run, tracebacks included, goes to ``last_train_log.txt``. Any failure
ends the run as ``failed`` without publishing (fail closed). The writer lock is taken before the
log is opened, so a second run that cannot get the lock never clobbers the first one's log.

Every history record of a run carries its ``run_id`` and ``elapsed_seconds``, and the decision
record (promote, reject, failed) the ingest counts, so trainer metrics can be rebuilt from the
history alone. SIGINT/SIGTERM (``KeyboardInterrupt``) abort a run like a failure; they are held
back while a version is published or retired together with its record, so an interrupted run
never leaves a served version without its decision in the history.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelops import data, gate, history, rollout_control
from modelops.config import Config
from modelops.errors import ModelopsError, ServableError, ServingTimeout, ServingUnavailable, StoreError, VerifyError
from modelops.notify import notify
from modelops.store import ModelStore

EXIT_PROMOTED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REJECTED = 3


@dataclass(frozen=True)
class RunResult:
    outcome: str  # promoted | rejected | failed | rolled_back
    version: int | None
    message: str

    @property
    def exit_code(self) -> int:
        return {"promoted": EXIT_PROMOTED, "rejected": EXIT_REJECTED}.get(self.outcome, EXIT_FAILED)


class RunLog:
    """Progress lines to the console, everything to the run log file."""

    def __init__(self, path: Path, steps: int, echo: Callable[[str], None] = print):
        self.path, self.steps, self.echo, self.n = path, steps, echo, 0
        self._fh = None

    def __enter__(self) -> RunLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 (closed in __exit__)
        return self

    def __exit__(self, *exc) -> None:
        self._fh.close()

    def step(self, message: str) -> None:
        self.n += 1
        self.echo(f"[{self.n}/{self.steps}] {message}")
        self.detail(f"[{self.n}/{self.steps}] {message}")

    def note(self, message: str) -> None:
        """A progress line within a step: shown and logged, not numbered."""
        self.echo(message)
        self.detail(message)

    def detail(self, message: str) -> None:
        self._fh.write(f"{history.now_iso()} {message}\n")
        self._fh.flush()


# verifier(config, version, eval rows, the gate's predictions for them, log): returns when serving
# answers like the gated model; raises VerifyError when it does not, ServingUnavailable or
# ServingTimeout when serving never answered at all.
Verifier = Callable[[Config, int, np.ndarray, np.ndarray, RunLog], None]
NOTIFY_LABELS = {"promote": "promoted", "reject": "rejected"}


class _Run:
    """One retrain's identity, clock and ingest counts, stamped on every record it writes."""

    def __init__(self, config: Config, log: RunLog):
        self.config, self.log = config, log
        self.id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.started = time.monotonic()
        self.ingest: data.IngestReport | None = None

    def ingest_counts(self) -> dict:
        report = self.ingest
        return {
            "rows_accepted": report.rows_accepted if report else 0,
            "batches_accepted": len(report.accepted) if report else 0,
            "batches_quarantined": len(report.quarantined) if report else 0,
        }

    def record(self, event: str, message: str, **fields) -> dict:
        return _record(self.config, event, message, run_id=self.id,
                       elapsed_seconds=round(time.monotonic() - self.started, 3), **fields)


def _record(config: Config, event: str, message: str, **fields) -> dict:
    """One decision: a history record plus its notification line (and webhook)."""
    record = history.append(config.history_path, event, model_name=config.model_name, **fields)
    notify(config.notifications_path, NOTIFY_LABELS.get(event, event), f"{config.model_name} {message}", record)
    return record


_interrupted = threading.Event()  # a stop signal arrived inside interrupts()


@contextlib.contextmanager
def interrupts():
    """SIGTERM and SIGINT raise KeyboardInterrupt once; later ones are ignored while it unwinds.

    The signal is also remembered: raised inside TensorFlow's own Python code (tf.data, Keras
    callbacks), the KeyboardInterrupt can come out as another error, and the run must still be
    recorded as interrupted rather than as that error.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum, _frame):
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)
        _interrupted.set()
        raise KeyboardInterrupt

    _interrupted.clear()
    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def _signals_held():
    """Defer SIGINT/SIGTERM to the end of the block (re-raised only if the block succeeded)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {s: signal.signal(s, lambda signum, _: received.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received:
        signal.raise_signal(received[0])


def retrain(config: Config, wait_seconds: float = 0.0, echo=print, verifier: Verifier | None = None) -> RunResult:
    """Run one gated retrain under the writer lock; never raises for a failed step."""
    store = ModelStore(config.models_dir)
    waiting = f"waiting up to {wait_seconds:g}s for the writer lock"
    with store.lock(wait_seconds, on_wait=lambda holder: echo(f"{waiting} ({holder})")), \
            RunLog(config.train_log_path, steps=6 if verifier is None else 7, echo=echo) as log:
        run = _Run(config, log)
        log.detail(f"retrain {run.id} of {config.model_name} in {config.root}")
        try:
            return _retrain(config, store, run, verifier)
        except (Exception, KeyboardInterrupt) as exc:  # fail closed: record and report, publish nothing
            log.detail(traceback.format_exc())
            if isinstance(exc, KeyboardInterrupt) or _interrupted.is_set():
                message = "interrupted (SIGINT/SIGTERM) before publishing; nothing was published"
            else:
                message = str(exc) if isinstance(exc, ModelopsError) else f"{type(exc).__name__}: {exc}"
            run.record("failed", f"retrain {run.id}: {message}", version=None, reasons=[message],
                       **run.ingest_counts())
            log.detail(f"FAILED: {message}")
            return RunResult("failed", None, message)


def _retrain(config: Config, store: ModelStore, run: _Run, verifier: Verifier | None) -> RunResult:
    from modelops import model

    log = run.log
    run.ingest, dataset, split = _prepare_data(config, store, log)
    version = store.reserve_version()
    run_dir = config.runs_dir / f"{run.id}-v{version}"
    candidate, probabilities, accuracy, sanity_error = _train_and_evaluate(config, split, run_dir, f"v{version}", log)

    served = champion = store.latest()
    champion_accuracy, no_champion = None, "no champion yet"
    if champion is not None:
        try:
            champion_probs = model.predict(model.load_signature(store.path(champion)), split.x_eval)
        except ServableError as exc:
            # TF Serving cannot answer with this export either (e.g. one saved before ExportArchive):
            # there is no working model to protect, so it is no champion and the floor decides.
            first = (exc.message.splitlines() or [""])[0].split(". ")[0]
            champion, no_champion = None, f"served v{served} cannot answer ({exc.code}: {first})"
        except Exception as exc:
            raise StoreError(
                f"could not evaluate the serving champion v{champion}: {exc}; "
                "retire it with 'retrain_pipeline.py rollback' and retrain"
            ) from exc
        else:
            champion_accuracy = model.accuracy_percent(champion_probs, split.y_eval)
            log.step(f"champion: v{champion} {champion_accuracy:.2f}% on the same eval rows")
    if champion is None:
        log.step(f"champion: {no_champion}, the accuracy floor alone decides")

    decision = gate.decide(config.gate, accuracy, champion_accuracy, len(split.y_eval), sanity_error, no_champion)
    metrics = _metrics(config, version, run.id, accuracy, candidate, dataset, split, champion, champion_accuracy,
                       decision)
    record = dict(
        version=version, accuracy_percent=round(accuracy, 4),
        threshold_percent=decision.threshold_percent, champion_version=champion,
        champion_accuracy_percent=None if champion_accuracy is None else round(champion_accuracy, 4),
        eval_rows=len(split.y_eval), data_fingerprint=dataset.fingerprint, reasons=list(decision.reasons),
        **run.ingest_counts(),
    )
    versus = f" vs champion v{champion} {champion_accuracy:.2f}%" if champion is not None else ""
    if not decision.promote:
        store_json(run_dir / "metrics.json", metrics)
        keeps = f"v{served} keeps serving" if served is not None else "nothing is served yet"
        run.record("reject", f"v{version} {accuracy:.2f}%{versus}: {'; '.join(decision.reasons)}; {keeps}", **record)
        log.step(f"gate: REJECTED v{version}: {'; '.join(decision.reasons)} (kept in {run_dir})")
        return RunResult("rejected", version, "; ".join(decision.reasons))

    metrics["promoted_at"] = history.now_iso()
    promoted = RunResult("promoted", version, f"v{version} {accuracy:.2f}%")
    try:
        with _signals_held():
            rollout_control.before_publish(config, store, version)  # shadow/canary: loads beside the champion
            store.publish(candidate.path, version, metrics)
            shutil.rmtree(candidate.path, ignore_errors=True)
            run.record("promote", f"v{version} {accuracy:.2f}%{versus}: {'; '.join(decision.reasons)}", **record)
            log.step(f"gate: PROMOTED v{version} to {store.path(version)}")
        if verifier is None:
            return promoted
        verifier(config, version, split.x_eval, probabilities, log)
    except KeyboardInterrupt:
        if not store.path(version).is_dir():
            raise  # interrupted before the publish block: nothing was published
        return _unverified(run, promoted, "interrupted (SIGINT/SIGTERM) before verification finished")
    except VerifyError as exc:
        return _roll_back_unverifiable(run, store, version, str(exc))
    except (ServingUnavailable, ServingTimeout) as exc:
        if config.verify.on_unreachable == "fail":
            return _roll_back_unverifiable(run, store, version, f"{exc} (verify.on_unreachable is fail)")
        return _unverified(run, promoted, str(exc))
    run.record("verified", f"v{version} verified: TF Serving answers like the gated model", version=version,
               reasons=[f"{min(config.verify.rows, len(split.y_eval))} eval rows within {config.verify.tolerance:g}"])
    log.step(f"verify: v{version} is served and answers like the gated model")
    return dataclasses.replace(promoted, message=f"{promoted.message}, verified")


def _unverified(run: _Run, promoted: RunResult, reason: str) -> RunResult:
    run.record("unverified", f"v{promoted.version} promoted but NOT verified: {reason}", version=promoted.version,
               reasons=[reason])
    run.log.step(f"verify: WARNING v{promoted.version} is promoted but unverified: {reason}")
    return dataclasses.replace(promoted, message=f"{promoted.message}, UNVERIFIED: {reason}")


def _roll_back_unverifiable(run: _Run, store: ModelStore, version: int, reason: str) -> RunResult:
    run.record("verify-failed", f"v{version} failed verification: {reason}", version=version, reasons=[reason])
    served = _retire(run.config, store, [version], f"v{version} failed verification", run)
    now = f"v{served} serves again" if served is not None else "no version is served now"
    run.log.step(f"verify: FAILED for v{version}, rolled back ({now}): {reason}")
    return RunResult("rolled_back", version, f"v{version} failed verification and was retired ({now}): {reason}")


def train_only(config: Config, echo=print) -> Path:
    """Train and evaluate a candidate into ``runs/`` without gating or publishing it."""
    store = ModelStore(config.models_dir)
    with store.lock(), RunLog(config.train_log_path, steps=4, echo=echo) as log:
        run_dir = config.runs_dir / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-train"
        _, _, split = _prepare_data(config, store, log)
        candidate, _, accuracy, _ = _train_and_evaluate(config, split, run_dir, "candidate", log)
        store_json(run_dir / "metrics.json", {"test_accuracy_percent": round(accuracy, 4),
                                              "training_loss": round(candidate.training_loss, 6)})
        return candidate.path


def _prepare_data(config: Config, store: ModelStore, log: RunLog):
    """Clean up after crashed runs, ingest new batches, load and split the dataset."""
    stale = store.clean_stale()
    report = data.ingest(config)
    log.step(
        f"ingest: {len(report.accepted)} batch(es) accepted ({report.rows_accepted} rows), "
        f"{len(report.quarantined)} quarantined"
        + (", synthetic bootstrap data written" if report.bootstrapped else "")
        + (f", removed stale {', '.join(stale)}" if stale else "")
    )
    for name, reason in report.quarantined:
        log.detail(f"quarantined {name}: {reason}")
        notify(config.notifications_path, "quarantined", f"data batch {name}: {reason}",
               {"event": "quarantined", "file": name, "reasons": [reason]})
    dataset = data.load_dataset(config)
    split = data.split(dataset, config.data.eval_percent)
    log.step(
        f"data: {len(dataset)} rows from {len(dataset.files)} batch(es), {len(split.y_train)} train / "
        f"{len(split.y_eval)} eval, fingerprint {dataset.fingerprint}"
    )
    return report, dataset, split


def _train_and_evaluate(config: Config, split, run_dir: Path, label: str, log: RunLog):
    """Train, export, reload the export and score it on the eval rows through its signature.

    The probabilities are kept: verification compares what serving answers with them.
    """
    from modelops import model, train  # TensorFlow loads only when a run needs it

    candidate = train.train_candidate(config.train, split, run_dir / "candidate")
    log.step(f"train: {label}, loss {candidate.training_loss:.4f}, "
             f"{config.train.epochs} epochs in {candidate.seconds:.1f}s")
    probabilities = model.predict(model.load_signature(candidate.path), split.x_eval)
    sanity_error = _sanity_error(probabilities, len(split.y_eval))
    accuracy = model.accuracy_percent(probabilities, split.y_eval) if not sanity_error else 0.0
    log.step(f"evaluate: {label} {accuracy:.2f}% on {len(split.y_eval)} eval rows")
    return candidate, probabilities, accuracy, sanity_error


def _sanity_error(probabilities, rows: int) -> str | None:
    if probabilities.shape != (rows, 1):
        return f"output shape {probabilities.shape}, expected ({rows}, 1)"
    values = probabilities.reshape(-1).tolist()
    if not all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in values):
        return "outputs are not all finite probabilities in [0, 1]"
    return None


def _metrics(config, version, run_id, accuracy, candidate, dataset, split, champion, champion_accuracy, decision):
    return {
        "model_name": config.model_name,
        "version": version,
        "test_accuracy_percent": round(accuracy, 4),
        "training_loss": round(candidate.training_loss, 6),
        "training_accuracy_percent": round(candidate.training_accuracy_percent, 4),
        "trained_at": history.now_iso(),
        "run_id": run_id,
        "dataset": {
            "rows": len(dataset),
            "train_rows": len(split.y_train),
            "eval_rows": len(split.y_eval),
            "positive_fraction": round(float(dataset.y.mean()), 4),
            "fingerprint": dataset.fingerprint,
            "files": list(dataset.files),
        },
        "champion": None if champion is None else {"version": champion,
                                                   "accuracy_percent": round(champion_accuracy, 4)},
        "gate": {"promote": decision.promote, "reasons": list(decision.reasons),
                 "threshold_percent": decision.threshold_percent},
        "config": {"train": dataclasses.asdict(config.train), "gate": dataclasses.asdict(config.gate)},
    }


def store_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def rollback(config: Config, to_version: int | None = None, reason: str = "manual rollback",
             wait_seconds: float = 0.0) -> tuple[list[int], int]:
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


def _retire(config: Config, store: ModelStore, versions: list[int], reason: str, run: _Run | None = None):
    """Retire ``versions`` (highest first) with a rollback record each; return the version served now."""
    with _signals_held():
        for v in versions:
            store.retire(v)
        served = store.latest()
        again = f"v{served} serves again" if served is not None else "no version is served now"
        for v in versions:
            fields = dict(version=v, to_version=served, reasons=[reason])
            message = f"retired v{v}; {again}: {reason}"
            run.record("rollback", message, **fields) if run else _record(config, "rollback", message, **fields)
        rollout_control.sync(config, store)
    return served


def status_lines(config: Config, recent: int = 5) -> list[str]:
    """What is published, what TF Serving will serve, and the last decisions."""
    store = ModelStore(config.models_dir)
    versions = store.versions()
    lines = [f"model {config.model_name} in {store.root}"]
    if not versions:
        lines.append("no published version yet: run 'python retrain_pipeline.py'")
    for v in reversed(versions):
        m = store.metrics(v) or {}
        served = "  <- served (highest version)" if v == versions[-1] else ""
        acc = m.get("test_accuracy_percent")
        acc_text = f"{acc:.2f}%" if isinstance(acc, (int, float)) else "accuracy unknown"
        lines.append(f"  v{v}: {acc_text}, promoted {m.get('promoted_at', '?')}{served}")
    retired = store.retired()
    if retired:
        lines.append(f"retired: {', '.join(f'v{v}' for v in retired)}")
    records = history.read(config.history_path, limit=recent)
    if records:
        lines.append("recent decisions:")
        lines.extend(f"  {format_record(r)}" for r in reversed(records))
    return lines


def format_record(r: dict) -> str:
    version = f" v{r['version']}" if r.get("version") is not None else ""
    acc = f" {r['accuracy_percent']:.2f}%" if isinstance(r.get("accuracy_percent"), (int, float)) else ""
    reasons = "; ".join(r.get("reasons") or [])
    return f"{r.get('time', '?')} {r.get('event', '?'):<13}{version}{acc} {reasons}".rstrip()
