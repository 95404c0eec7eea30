"""Taking versions off the served path: a manual rollback, and the automatic one after a failed
verification. Each retired version gets a ``rollback`` record, written with the retirement while
stop signals are held, and the serving config file follows (``rollout_control.sync``)."""

from __future__ import annotations

from modelops.core.config import Config
from modelops.core.errors import StoreError
from modelops.core.history import Event, Outcome
from modelops.core.store import ModelStore
from modelops.trainer import rollout_control, signals
from modelops.trainer.retrain.records import Run, RunResult, record


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
        return retired, retire(config, store, retired, reason)


def roll_back_unverifiable(run: Run, store: ModelStore, version: int, reason: str) -> RunResult:
    """Retire a promoted version that serving does not answer like the gated model."""
    run.record(Event.VERIFY_FAILED, f"v{version} failed verification: {reason}", version=version, reasons=[reason])
    served = retire(run.config, store, [version], f"v{version} failed verification", run)
    now = f"v{served} serves again" if served is not None else "no version is served now"
    run.log.step("verify", f"FAILED for v{version}, rolled back ({now}): {reason}")
    return RunResult(Outcome.ROLLED_BACK, version,
                     f"v{version} failed verification and was retired ({now}): {reason}")


def retire(config: Config, store: ModelStore, versions: list[int], reason: str, run: Run | None = None) -> int | None:
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
                record(config, Event.ROLLBACK, message, **fields)
        rollout_control.sync(config, store)
    return served
