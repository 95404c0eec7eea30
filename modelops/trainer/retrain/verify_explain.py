"""Verification of the ``explain`` signature (docs/explain.md): at publication the trainer runs the
candidate's explain signature in-process on the first few verification rows and keeps the
attributions in ``metrics.json`` (``verification.explain``); after the promotion serving is asked
the same rows with ``"signature_name": "explain"`` and must answer them within
``verify.tolerance``, or verification fails as for a wrong prediction. A version exported without
the signature records nothing, and is verified on its predictions alone, as before."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelops.core.schema import Schema
from modelops.core.store import ModelStore
from modelops.trainer.data import tables

ROWS = 5  # explained rows asked of serving (each costs the signature's STEPS points)


def expected(path: Any, schema: Schema, split: tables.Split, rows: int) -> dict | None:
    """``{"rows": n, "attributions": [[...]]}`` for the first ``min(rows, ROWS)`` eval rows (the
    first verification rows), from the SavedModel at ``path``; None when it has no explain signature."""
    from modelops.trainer.model import explain

    n = min(rows, ROWS, len(split.x_eval))
    text = None if split.text_eval is None else split.text_eval[:n]
    found = explain.attributions(path, schema, split.x_eval[:n], text)
    return None if found is None or n == 0 else {"rows": n, "attributions": found.tolist()}


def recorded(store: ModelStore, version: int, rows: int) -> np.ndarray | None:
    """The attributions kept with ``version`` at publication, at most ``rows`` of them (the rows
    verification sends); None when it kept none."""
    kept = ((store.metrics(version) or {}).get("verification") or {}).get("explain")
    if not isinstance(kept, dict) or not kept.get("attributions"):
        return None
    return np.asarray(kept["attributions"], dtype=np.float64)[:rows]
