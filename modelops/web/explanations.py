"""``/predict``'s optional explanations: asked with ``"explain": true`` (JSON) or the form's
checkbox, answered by the same version's ``explain`` signature (docs/explain.md). Without the ask,
the predict path makes no extra call."""

from __future__ import annotations

from typing import Any

from flask import g, request

from modelops.core import explanation
from modelops.core.errors import ServingHTTPError
from modelops.core.schema import Schema
from modelops.core.signature import EXPLAIN_SIGNATURE
from modelops.web.deps import serving


def requested(is_form: bool) -> bool:
    """The request asked for explanations (the JSON flag is read while parsing, see inputs.py)."""
    return request.form.get("explain") == "on" if is_form else bool(g.get("explain", False))


def explain(rows: list, version: int, schema: Schema) -> list[dict[str, Any]]:
    """One explanation per row, from the version that answered the prediction."""
    answers = serving().predict(rows, version, signature=EXPLAIN_SIGNATURE)
    if len(answers) != len(rows):
        raise ServingHTTPError(502, f"TF Serving returned {len(answers)} explanations for {len(rows)} rows")
    return [explanation.read(answer, schema) for answer in answers]
