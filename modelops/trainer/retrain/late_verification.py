"""Verifying a promotion after its run: the first model, published before TF Serving could start.

Its run could not verify it (``publish._deferred``), so the served version's promote record has
no verification record after it. The trainer service asks ``version_awaiting_verification`` at
every poll and, once serving answers, runs ``verify_late`` (``retrain_pipeline.py verify``) with
the rows and answers the publication kept in ``metrics.json``.
"""

from __future__ import annotations

import numpy as np

from modelops.core import history
from modelops.core.config import Config
from modelops.core.errors import ServingTimeout, ServingUnavailable, VerifyError
from modelops.core.history import Event, Outcome
from modelops.core.store import ModelStore
from modelops.trainer.retrain.records import Run, RunResult, record_unverified, record_verified
from modelops.trainer.retrain.rollback import roll_back_unverifiable
from modelops.trainer.retrain.runlog import RunLog
from modelops.trainer.retrain.verify import Verifier


def version_awaiting_verification(config: Config, store: ModelStore) -> int | None:
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


def verify_late(config: Config, verifier: Verifier, wait_seconds: float = 0.0, echo=print) -> RunResult | None:
    """Verify the served version if it has no verification record yet, with the rows and answers its
    publication kept in metrics.json; roll it back if serving disagrees. None: nothing to verify."""
    store = ModelStore(config.models_dir)
    waiting = f"waiting up to {wait_seconds:g}s for the writer lock"
    with store.lock(wait_seconds, on_wait=lambda holder: echo(f"{waiting} ({holder})")), \
            RunLog(config.runs_dir / "last_verify_log.txt", ("verify",), echo) as log:
        version = version_awaiting_verification(config, store)
        kept = (store.metrics(version) or {}).get("verification") if version is not None else None
        if version is None or not kept:
            return None
        run = Run(config, log)
        promoted = RunResult(Outcome.PROMOTED, version, f"v{version}")
        rows = kept["rows"]  # typed rows by feature name stay as they are; packed rows are a float matrix
        try:
            verifier(config, version, rows if rows and isinstance(rows[0], dict) else np.asarray(rows, np.float32),
                     np.asarray(kept["expected"]), log)
        except VerifyError as exc:
            return roll_back_unverifiable(run, store, version, str(exc))
        except (ServingUnavailable, ServingTimeout) as exc:
            return record_unverified(run, promoted, str(exc))
        return record_verified(run, promoted, len(kept["rows"]))
