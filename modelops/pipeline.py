"""One gated retrain, start to finish, and the other store operations (rollback, status).

ingest -> load + split -> train candidate -> reload check -> evaluate candidate and champion on
the same eval rows -> gate -> publish (atomic) or reject -> record. Every step prints one
progress line; the whole run, tracebacks included, goes to ``last_train_log.txt``. Any failure
ends the run as ``failed`` without publishing (fail closed). The writer lock is taken before the
log is opened, so a second run that cannot get the lock never clobbers the first one's log.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelops import data, gate, history
from modelops.config import Config
from modelops.errors import ModelopsError, StoreError
from modelops.notify import notify
from modelops.store import ModelStore

EXIT_PROMOTED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REJECTED = 3


@dataclass(frozen=True)
class RunResult:
    outcome: str  # promoted | rejected | failed
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

    def detail(self, message: str) -> None:
        self._fh.write(f"{history.now_iso()} {message}\n")
        self._fh.flush()


Verifier = Callable[[Config, int, "data.Split", RunLog], None]


def retrain(config: Config, wait_seconds: float = 0.0, echo=print, verifier: Verifier | None = None) -> RunResult:
    """Run one gated retrain under the writer lock; never raises for a failed step."""
    store = ModelStore(config.models_dir)
    with store.lock(wait_seconds), RunLog(config.train_log_path, steps=7, echo=echo) as log:
        run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        log.detail(f"retrain {run_id} of {config.model_name} in {config.root}")
        try:
            return _retrain(config, store, log, run_id, verifier)
        except Exception as exc:  # fail closed: record and report, publish nothing
            log.detail(traceback.format_exc())
            message = str(exc) if isinstance(exc, ModelopsError) else f"{type(exc).__name__}: {exc}"
            history.append(config.history_path, "failed", model_name=config.model_name, run_id=run_id,
                           version=None, reasons=[message])
            notify(config.notifications_path, "failed", f"{config.model_name} retrain {run_id}: {message}")
            log.detail(f"FAILED: {message}")
            return RunResult("failed", None, message)


def _retrain(config: Config, store: ModelStore, log: RunLog, run_id: str, verifier: Verifier | None) -> RunResult:
    from modelops import model

    dataset, split = _prepare_data(config, store, log)
    version = store.reserve_version()
    run_dir = config.runs_dir / f"{run_id}-v{version}"
    candidate, accuracy, sanity_error = _train_and_evaluate(config, split, run_dir, f"v{version}", log)

    champion = store.latest()
    champion_accuracy = None
    if champion is not None:
        try:
            champion_probs = model.predict(model.load_signature(store.path(champion)), split.x_eval)
        except Exception as exc:
            raise StoreError(
                f"could not evaluate the serving champion v{champion}: {exc}; "
                "retire it with 'retrain_pipeline.py rollback' and retrain"
            ) from exc
        champion_accuracy = model.accuracy_percent(champion_probs, split.y_eval)
        log.step(f"champion: v{champion} {champion_accuracy:.2f}% on the same eval rows")
    else:
        log.step("champion: none yet, the accuracy floor alone decides")

    decision = gate.decide(config.gate, accuracy, champion_accuracy, len(split.y_eval), sanity_error)
    metrics = _metrics(config, version, run_id, accuracy, candidate, dataset, split, champion, champion_accuracy,
                       decision)
    record = dict(
        model_name=config.model_name, version=version, accuracy_percent=round(accuracy, 4),
        threshold_percent=decision.threshold_percent, champion_version=champion,
        champion_accuracy_percent=None if champion_accuracy is None else round(champion_accuracy, 4),
        eval_rows=len(split.y_eval), data_fingerprint=dataset.fingerprint, reasons=list(decision.reasons),
        run_id=run_id,
    )
    versus = f" vs champion v{champion} {champion_accuracy:.2f}%" if champion is not None else ""
    if not decision.promote:
        store_json(run_dir / "metrics.json", metrics)
        history.append(config.history_path, "reject", **record)
        keeps = f"v{champion} keeps serving" if champion is not None else "nothing is served yet"
        notify(config.notifications_path, "rejected",
               f"{config.model_name} v{version} {accuracy:.2f}%{versus}: {'; '.join(decision.reasons)}; {keeps}")
        log.step(f"gate: REJECTED v{version}: {'; '.join(decision.reasons)} (kept in {run_dir})")
        return RunResult("rejected", version, "; ".join(decision.reasons))

    metrics["promoted_at"] = history.now_iso()
    store.publish(candidate.path, version, metrics)
    shutil.rmtree(candidate.path, ignore_errors=True)
    history.append(config.history_path, "promote", **record)
    notify(config.notifications_path, "promoted",
           f"{config.model_name} v{version} {accuracy:.2f}%{versus}: {'; '.join(decision.reasons)}")
    log.step(f"gate: PROMOTED v{version} to {store.path(version)}")
    if verifier is not None:
        verifier(config, version, split, log)
    return RunResult("promoted", version, f"v{version} {accuracy:.2f}%")


def train_only(config: Config, echo=print) -> Path:
    """Train and evaluate a candidate into ``runs/`` without gating or publishing it."""
    store = ModelStore(config.models_dir)
    with store.lock(), RunLog(config.train_log_path, steps=4, echo=echo) as log:
        run_dir = config.runs_dir / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-train"
        _, split = _prepare_data(config, store, log)
        candidate, accuracy, _ = _train_and_evaluate(config, split, run_dir, "candidate", log)
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
        notify(config.notifications_path, "quarantined", f"data batch {name}: {reason}")
    dataset = data.load_dataset(config)
    split = data.split(dataset, config.data.eval_percent)
    log.step(
        f"data: {len(dataset)} rows from {len(dataset.files)} batch(es), {len(split.y_train)} train / "
        f"{len(split.y_eval)} eval, fingerprint {dataset.fingerprint}"
    )
    return dataset, split


def _train_and_evaluate(config: Config, split, run_dir: Path, label: str, log: RunLog):
    """Train, export, reload the export and score it on the eval rows through its signature."""
    from modelops import model, train  # TensorFlow loads only when a run needs it

    candidate = train.train_candidate(config.train, split, run_dir / "candidate")
    log.step(f"train: {label}, loss {candidate.training_loss:.4f}, "
             f"{config.train.epochs} epochs in {candidate.seconds:.1f}s")
    probabilities = model.predict(model.load_signature(candidate.path), split.x_eval)
    sanity_error = _sanity_error(probabilities, len(split.y_eval))
    accuracy = model.accuracy_percent(probabilities, split.y_eval) if not sanity_error else 0.0
    log.step(f"evaluate: {label} {accuracy:.2f}% on {len(split.y_eval)} eval rows")
    return candidate, accuracy, sanity_error


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
        for v in retired:
            store.retire(v)
            history.append(config.history_path, "rollback", model_name=config.model_name, version=v,
                           to_version=to_version, reasons=[reason])
        notify(config.notifications_path, "rollback",
               f"{config.model_name} retired v{', v'.join(map(str, retired))}; v{to_version} serves again: {reason}")
        return retired, to_version


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
