"""Batches against the serving version: what a run's new rows look like, and how the served model does on them.

At ingest (:func:`at_ingest`) the batches a run accepted are scored against the serving version's
reference (``modelops.trainer.drift``), and the serving version predicts their labels before anything is
trained: ``served_accuracy_on_new`` is the truest signal of decay, since labels arrive with the
batch. Both go into the run's history record. :func:`recent` is ``retrain_pipeline.py drift``: the
newest accepted batches, each scored against the reference of the version serving now.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from modelops.core import psi
from modelops.core.config import Config
from modelops.core.errors import ModelopsError
from modelops.core.schema import recorded_schema
from modelops.core.store import ModelStore
from modelops.trainer import drift, scoring
from modelops.trainer.data import cache, layout, tables

RECENT_BATCHES = 10


def _table(config: Config, batch: Path) -> drift.Table:
    return drift.of_batch(config.schema, cache.batch_rows(config, batch))


def _newest_first(config: Config) -> list[Path]:
    found = []
    for path in layout.accepted_dir(config).glob("*.csv"):
        with contextlib.suppress(OSError):
            found.append((path.stat().st_mtime_ns, path.name, path))
    return [path for *_, path in sorted(found, reverse=True)]


def served_reference(config: Config, store: ModelStore) -> tuple[int | None, dict | None]:
    """The serving version and its reference (None for a version trained before drift was recorded)."""
    served = store.latest()
    return served, psi.reference_of(store.metrics(served)) if served is not None else None


def accepted_names(config: Config) -> set[str]:
    """The accepted batches now: taken before ingest, the difference after it is what the run accepted."""
    return {p.name for p in layout.accepted_dir(config).glob("*.csv")}


def at_ingest(config: Config, store: ModelStore, before: set[str], note) -> dict:
    """The run record's ``drift``, ``drift_reference_version`` and ``served_accuracy_on_new`` for the
    batches accepted since ``before`` was listed; ``note`` logs a line. Never stops the run."""
    try:
        return _at_ingest(config, store, before, note)
    except (ModelopsError, OSError, ValueError) as exc:
        note(f"drift: the new batches could not be scored ({exc}); the run goes on")
        return {}


def _at_ingest(config: Config, store: ModelStore, before: set[str], note) -> dict:
    batches = [p for p in _newest_first(config) if p.name not in before]
    served, ref = served_reference(config, store)
    if not batches or served is None:
        return {}
    parsed = [cache.batch_rows(config, p) for p in batches]
    scored = [drift.of_batch(config.schema, b) for b in parsed]
    new = tables.Batch(np.concatenate([b.numbers for b in parsed]), np.concatenate([b.text for b in parsed]))
    fields: dict = {"served_accuracy_on_new": _served_accuracy(config, store, served, new)}
    if fields["served_accuracy_on_new"] is not None:
        note(f"served v{served} answers {fields['served_accuracy_on_new']:.2f}% of the {len(new)} new rows right")
    if ref is None:
        note(f"drift: served v{served} has no reference statistics (trained before drift was recorded)")
        return fields
    cfg = config.drift
    for path, rows in zip(batches, scored, strict=True):
        note(f"drift of {path.name} ({len(rows)} rows) vs v{served}: "
             f"{drift.describe(drift.score(ref, rows, cfg.threshold, cfg.min_rows), cfg.threshold, cfg.min_rows)}")
    report = drift.score(ref, drift.of_batch(config.schema, new), cfg.threshold, cfg.min_rows)
    return {**fields, "drift": report["features"], "drift_label": report["label"], "drift_reference_version": served}


def _served_accuracy(config: Config, store: ModelStore, served: int, new: tables.Batch) -> float | None:
    """The serving version's accuracy in percent on the new labelled rows, fed as its own schema reads them;
    None if it cannot answer them (trained on other features, or not loadable)."""
    from modelops.trainer.model import network as model  # TensorFlow: only in a run

    own = recorded_schema(store.metrics(served))
    if own is None or own.scoring_gap(config.schema) or own.label.is_number:  # a number has no accuracy
        return None
    x, text = tables.relayout(config.schema, own, new.numbers[:, :-1], new.text)
    try:
        probabilities = model.predict(model.load_signature(store.path(served)), x, own, text)
    except (ModelopsError, ValueError, OSError):
        return None
    return round(scoring.metric_percent("accuracy", new.numbers[:, -1], scoring.predicted_classes(probabilities)), 4)


def recent(config: Config, limit: int = RECENT_BATCHES) -> dict:
    """``{"reference_version": N, "batches": [{"file", "rows", "features": {name: {"score", "drifted"}}}]}``,
    newest batch first; ``reference_version`` None (and no batches) when nothing with a reference is served."""
    served, ref = served_reference(config, ModelStore(config.models_dir))
    if ref is None:
        return {"reference_version": None, "batches": []}
    cfg, batches = config.drift, []
    for path in _newest_first(config)[:limit]:
        try:
            report = drift.score(ref, _table(config, path), cfg.threshold, cfg.min_rows)
        except (ModelopsError, OSError) as exc:
            batches.append({"file": path.name, "error": str(exc)})
            continue
        batches.append({"file": path.name, "rows": report["rows"], "features": report["features"],
                        "label": report["label"]})
    return {"reference_version": served, "batches": batches}


def format_table(report: dict) -> list[str]:
    """``drift`` without ``--json``: one line per batch, the score per feature, drifted ones marked."""
    if report["reference_version"] is None:
        return ["no served version with reference statistics yet: drift is scored against the serving model's "
                "training rows (run 'python retrain_pipeline.py')"]
    lines = [f"batches against the reference of v{report['reference_version']} (PSI; * = drifted):"]
    for batch in report["batches"]:
        if "error" in batch:
            lines.append(f"  {batch['file']}: {batch['error']}")
            continue
        scores = "  ".join(f"{name} {f['score']:.3f}{'*' if f['drifted'] else ''}"
                           for name, f in batch["features"].items())
        lines.append(f"  {batch['file']} ({batch['rows']} rows): {scores}")
    if not report["batches"]:
        lines.append("  no accepted batches yet")
    return lines

