"""What one served prediction says, for either signature a schema exports (standard library only).

Packed (the demo): ``[p]``, the probability of the second class; its class is the second one when
``p >= 0.5``. Named: ``{"probabilities": [K numbers in class order], "class": name}``. A number
label: ``value``, the one output, so TF Serving answers the number itself (``23.4``). The
frontend's answer, verification, ``compare`` and the rollout's agreement all read a prediction
here, so "the same class" and "the probabilities" mean one thing everywhere.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from modelops.core.errors import ServingHTTPError
from modelops.core.schema import Schema

VALUE_AGREEMENT = 0.05  # two answers to a number label agree within 5 % of the larger one (rollout, compare)


@dataclass(frozen=True)
class Prediction:
    probabilities: tuple[float, ...]  # in ``label.classes`` order; empty for a number label
    index: int  # of the predicted class
    value: float | None = None  # a number label's answer, in its own units

    def name(self, schema: Schema) -> str:
        return schema.label.class_names[self.index]

    @property
    def probability(self) -> float:
        """Of the predicted class."""
        return self.probabilities[self.index]


def probability(prediction: Any) -> float:
    """A packed prediction's single probability; ServingHTTPError (502) when it is not one number."""
    value = prediction[0] if isinstance(prediction, list) and len(prediction) == 1 else prediction
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ServingHTTPError(502, f"TF Serving returned a prediction that is not one number: {prediction!r:.60}")
    return float(value)


def read(prediction: Any, schema: Schema) -> Prediction:
    """The prediction's class probabilities and class (or a number label's value); ServingHTTPError (502)
    when it has neither shape."""
    if schema.label.is_number:
        number = probability(prediction)
        if not math.isfinite(number):
            raise ServingHTTPError(502, f"TF Serving returned a value that is not finite: {prediction!r:.60}")
        return Prediction((), 0, number)
    if schema.packed:
        return _packed(probability(prediction))
    return _named(prediction, schema.label.class_names)


def _named(prediction: Any, names: tuple[str, ...]) -> Prediction:
    try:
        values, index = prediction["probabilities"], names.index(prediction["class"])
    except (TypeError, KeyError, ValueError):
        values, index = (), -1
    numbers = isinstance(values, list) and all(type(v) in (int, float) and math.isfinite(v) for v in values)
    if not numbers or len(values) != len(names) or index < 0:
        raise ServingHTTPError(502, f"TF Serving returned a prediction without {len(names)} class probabilities "
                                    f"and a class of {', '.join(names)}: {prediction!r:.80}")
    return Prediction(tuple(map(float, values)), index)


def read_all(predictions: list[Any], schema: Schema) -> list[Prediction]:
    """``read`` for a batch: the schema's signature is looked at once, not per row."""
    if schema.label.is_number:
        return [read(p, schema) for p in predictions]
    if schema.packed:
        plain = [p[0] for p in predictions if type(p) is list and len(p) == 1]  # the usual [[p], ...]
        if len(plain) == len(predictions) and {float, int}.issuperset(map(type, plain)):
            return list(map(_packed, plain))
        return [_packed(probability(p)) for p in predictions]
    names = schema.label.class_names
    return [_named(p, names) for p in predictions]


def read_outputs(outputs: Any, schema: Schema) -> list[Prediction]:
    """``read_all`` for a columnar answer (``client.predict_columns``): the one output's tensor, or
    output name -> tensor. A named answer's usual shape is checked column by column."""
    if isinstance(outputs, dict) and not schema.packed and not schema.label.is_number:
        fast = _named_columns(outputs, schema.label.class_names)
        if fast is not None:
            return fast
    if isinstance(outputs, dict):  # as rows: the answer ``predict`` would have given
        return read_all(output_rows(outputs), schema)
    if not isinstance(outputs, list):
        raise ServingHTTPError(502, f"TF Serving returned outputs that are not a list: {outputs!r:.80}")
    return read_all(outputs, schema)


def output_rows(outputs: Any) -> list[dict[str, Any]]:
    """Named columnar ``outputs`` (output name -> one entry per row) as one dict per row, as ``predict`` answers."""
    try:
        return [dict(zip(outputs, row, strict=True)) for row in zip(*outputs.values(), strict=True)]
    except (AttributeError, TypeError, ValueError):
        raise ServingHTTPError(502, f"TF Serving returned outputs that are not named lists of one length: "
                                    f"{outputs!r:.80}") from None


def _named_columns(outputs: dict[str, Any], names: tuple[str, ...]) -> list[Prediction] | None:
    """The predictions when ``class`` and ``probabilities`` are as expected; None sends them to ``_named``."""
    classes, values = outputs.get("class"), outputs.get("probabilities")
    if type(classes) is not list or type(values) is not list or len(classes) != len(values):
        return None
    lookup = {name: i for i, name in enumerate(names)}
    try:
        indexes = [lookup[name] for name in classes]
    except (KeyError, TypeError):
        return None
    if set(map(type, values)) - {list} or set(map(len, values)) - {len(names)}:
        return None
    flat = list(itertools.chain.from_iterable(values))
    if not {float, int}.issuperset(map(type, flat)) or not math.isfinite(sum(flat)):
        return None
    return [Prediction(tuple(map(float, row)), index) for row, index in zip(values, indexes, strict=True)]


def _packed(p: float) -> Prediction:
    return Prediction((1.0 - p, p), int(p >= 0.5))


def agree(a: Prediction, b: Prediction) -> bool:
    """The same class; for a number label, values within ``VALUE_AGREEMENT`` of the larger one."""
    if a.value is not None and b.value is not None:
        return abs(a.value - b.value) <= VALUE_AGREEMENT * max(abs(a.value), abs(b.value))
    return a.index == b.index


def difference(a: Prediction, b: Prediction) -> float:
    """The largest difference between the two predictions' class probabilities (|Δp| for the demo);
    for a number label, |Δvalue| in its units."""
    if a.value is not None and b.value is not None:
        return abs(a.value - b.value)
    return max(abs(x - y) for x, y in zip(a.probabilities, b.probabilities, strict=True))


def as_json(prediction: Prediction, schema: Schema) -> dict[str, Any]:
    """A named schema's answer to a ``/predict`` client: the class, its probability, every class's;
    a number label's ``{"value": v}``."""
    if prediction.value is not None:
        return {"value": prediction.value}
    return {"class": prediction.name(schema), "probability": prediction.probability,
            "probabilities": dict(zip(schema.label.class_names, prediction.probabilities, strict=True))}
