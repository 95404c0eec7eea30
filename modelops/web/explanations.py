"""``/predict``'s optional explanations: asked with ``"explain": true`` (JSON) or the form's
checkbox, answered by the same version's ``explain`` signature (docs/explain.md), or its
``explain_class`` signature for a class the JSON body names (``"explain_class"``). Without the ask,
the predict path makes no extra call."""

from __future__ import annotations

from typing import Any

from flask import g, request

from modelops.core import explanation
from modelops.core.errors import ServingHTTPError
from modelops.core.schema import Schema
from modelops.core.signature import CLASS_INPUT, EXPLAIN_CLASS_SIGNATURE, EXPLAIN_SIGNATURE
from modelops.web.deps import serving
from modelops.web.inputs import InputError


def requested(is_form: bool) -> bool:
    """The request asked for explanations (the JSON flag is read while parsing, see inputs.py)."""
    return request.form.get("explain") == "on" if is_form else bool(g.get("explain", False))


def explain(rows: list, version: int, schema: Schema) -> list[dict[str, Any]]:
    """One explanation per row, from the version that answered the prediction: of the predicted
    class, or of the JSON body's ``explain_class`` (``explain_class`` signature)."""
    asked = g.get("explain_class")
    if asked is None:
        answers = serving().predict(rows, version, signature=EXPLAIN_SIGNATURE)
    else:
        index = class_index(asked, schema)
        asking = [{"x": row, CLASS_INPUT: index} if schema.packed else {**row, CLASS_INPUT: index} for row in rows]
        answers = serving().predict(asking, version, signature=EXPLAIN_CLASS_SIGNATURE)
    if len(answers) != len(rows):
        raise ServingHTTPError(502, f"TF Serving returned {len(answers)} explanations for {len(rows)} rows")
    return [explanation.read(answer, schema) for answer in answers]


def class_index(asked: str, schema: Schema) -> int:
    """The position of ``explain_class`` among the label's classes; InputError (400) when it has none."""
    if schema.label.is_number:
        raise InputError("'explain_class' is for a class label; a number label's explanation explains its value: "
                         "send 'explain': true without it (docs/explain.md)")
    if CLASS_INPUT in schema.names:
        raise InputError(f"this model's schema declares a feature named {CLASS_INPUT!r}, so its export has no "
                         "explain_class signature; send 'explain': true without 'explain_class' (docs/explain.md)")
    names = schema.label.class_names
    if asked not in names:
        raise InputError(f"'explain_class' must be one of the label's classes {', '.join(names)}, got {asked!r}")
    return names.index(asked)
