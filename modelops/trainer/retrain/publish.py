"""Publishing a candidate that passed the gate, then having serving confirm it.

The candidate's directory becomes ``models/<N>/`` by one atomic rename, and its promote record
is written while stop signals are held, so no version is ever served without its record. Then
serving is asked to answer like the gated model (``verify.ServingVerifier``); what it disagrees
with is rolled back. A first model may be published before serving runs: its verification is
left to the trainer service (``late_verification``).
"""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np

from modelops.core.config import Config
from modelops.core.errors import ServingTimeout, ServingUnavailable, StoreError, VerifyError
from modelops.core.history import Event, Outcome
from modelops.core.store import ModelStore
from modelops.core.timestamps import now_iso
from modelops.trainer import compare, rollout_control, signals
from modelops.trainer.data import tables
from modelops.trainer.retrain import verify_explain
from modelops.trainer.retrain.evaluation import Gated
from modelops.trainer.retrain.records import (
    Run,
    RunResult,
    decision_fields,
    metrics_json,
    record_unverified,
    record_verified,
)
from modelops.trainer.retrain.rollback import roll_back_unverifiable
from modelops.trainer.retrain.verify import Verifier


def publish_and_verify(run: Run, store: ModelStore, gated: Gated, verifier: Verifier | None) -> RunResult:
    """Publish, then have serving confirm it; roll back what serving disagrees with."""
    version, config = gated.version, run.config
    promoted = RunResult(Outcome.PROMOTED, version, f"v{version} {gated.evaluation.score:.2f}%")
    first = gated.champion.served is None  # nothing was published: TF Serving may not even run yet
    try:
        _publish(run, store, gated)
        if verifier is None:
            return promoted
        # a first model asks an absent serving once instead of waiting for it: the service verifies it later
        verifier(config, version, _verification_rows(config, gated.split), gated.evaluation.probabilities, run.log,
                 patience=0.0 if first else None)
    except KeyboardInterrupt:
        if not store.path(version).is_dir():
            raise  # interrupted before the publish block: nothing was published
        return record_unverified(run, promoted, f"{signals.stop_reason(config.schedule.max_run_seconds)} "
                                                "before verification finished")
    except VerifyError as exc:
        return roll_back_unverifiable(run, store, version, str(exc))
    except (ServingUnavailable, ServingTimeout) as exc:
        if first:
            return _deferred(run, promoted, str(exc))
        if config.verify.on_unreachable == "fail":
            return roll_back_unverifiable(run, store, version, f"{exc} (verify.on_unreachable is fail)")
        return record_unverified(run, promoted, str(exc))
    verified = record_verified(run, promoted, len(gated.split.y_eval))
    compare.after_promotion(config, version, run.log)  # for the model page; never raises
    return verified


def _publish(run: Run, store: ModelStore, gated: Gated) -> None:
    """Publish the candidate and record the promotion, with stop signals held until both are done.

    A version is never served without its record: if the history cannot be written (disk full,
    read-only), the version leaves the served path again and the run fails saying why.
    """
    n = run.config.verify.rows
    rows = _verification_rows(run.config, gated.split)[:n]
    candidate, version = gated.evaluation.candidate, gated.version
    explained = verify_explain.expected(candidate.path, run.config.schema, gated.split, n)  # None: no signature
    metrics = {**metrics_json(run.config, run.id, gated), "promoted_at": now_iso(),
               "verification": {"rows": rows.tolist() if isinstance(rows, np.ndarray) else rows,
                                "expected": np.asarray(gated.evaluation.probabilities[:n]).tolist(),
                                **({"explain": explained} if explained else {})}}
    with signals.held():
        rollout_control.before_publish(run.config, store, gated.version)  # shadow/canary: loads beside the champion
        store.publish(candidate.path, gated.version, metrics)
        shutil.rmtree(candidate.path, ignore_errors=True)
        try:
            run.record(Event.PROMOTE, gated.summary(), **decision_fields(run, gated))
        except StoreError as exc:
            store.retire(version)
            raise StoreError(
                f"v{version} passed the gate but its promote record could not be written ({exc}); v{version} was "
                "retired so that no version is served without its record; free space or fix the permissions and "
                "retrain"
            ) from exc
        run.log.step("gate", f"PROMOTED v{version} to {store.path(version)}")


def _verification_rows(config: Config, split: tables.Split) -> np.ndarray | list[dict]:
    """The eval rows as verification sends them: the float matrix (packed schema) or typed rows by name."""
    schema = config.schema
    return split.x_eval if schema.packed else tables.typed_rows(schema, split.x_eval, split.text_eval)


def _deferred(run: Run, promoted: RunResult, reason: str) -> RunResult:
    """A first model, published before anything could serve it: the trainer service verifies it later."""
    run.log.step("verify", f"v{promoted.version} is the first model and TF Serving does not answer yet ({reason}); "
                           "the trainer service verifies it once serving is up ('retrain_pipeline.py verify')")
    return dataclasses.replace(promoted, message=f"{promoted.message}, verification pending")
