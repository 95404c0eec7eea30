"""``score --explain``: each scored row's explanation as columns (docs/scoring-files.md, docs/explain.md).

The file is scored as ``batch_score`` scores it; each chunk of good rows is also sent to the
version's ``explain`` signature, and every row gets, after the answer columns, the baseline's
prediction (``baseline_prediction``) and one column per declared feature, ``explain_<feature>``,
with its contribution. They add up: per row, the ``explain_*`` cells sum to the explained
prediction (the predicted class's probability, ``probability_<class>``) minus
``baseline_prediction``, within the documented tolerance. A row with an error leaves them blank.
Without ``--explain`` none of this runs: ``FileScorer`` asks only ``serving_default``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from modelops.core import explanation
from modelops.core.batch_score import AnswerCells, FileScorer
from modelops.core.errors import ServingHTTPError, UsageError
from modelops.core.predictions import Prediction, output_rows
from modelops.core.schema import Schema
from modelops.core.signature import EXPLAIN_SIGNATURE

CHUNK_ROWS = 250  # rows per request when explaining: serving runs each row STEPS times (the path)
BASELINE_COLUMN = "baseline_prediction"
PREFIX = "explain_"


def columns(schema: Schema) -> list[str]:
    """The columns ``--explain`` adds after the answer columns: the baseline's prediction, then one per feature."""
    return [BASELINE_COLUMN, *(PREFIX + f.name for f in schema.features)]


@dataclass(frozen=True)
class Explained(Prediction):
    """A prediction with its explanation: attributions in schema order and the baseline's prediction."""

    attributions: tuple[float, ...] = ()
    baseline: float = 0.0


class ExplainingScorer(FileScorer):
    """``FileScorer`` that also asks each chunk's ``explain`` signature and reads both answers together."""

    def ask(self, inputs: Any) -> Any:
        predicted = super().ask(inputs)
        try:
            why = self.client.predict_columns(inputs, self.version, signature=EXPLAIN_SIGNATURE)
        except ServingHTTPError as exc:
            if exc.status not in (400, 404):
                raise
            # the rows were just predicted, so it is the signature that is missing (an older export)
            raise UsageError(f"version {self.version} answers no explanations ({exc.message}); it was exported "
                             "before explanations (docs/explain.md): score without --explain") from None
        return predicted, why

    def read(self, got: Any) -> Sequence[Prediction]:
        predicted, why = got
        plain = super().read(predicted)
        rows = output_rows(why)
        if len(rows) != len(plain):
            raise ServingHTTPError(502, f"TF Serving returned {len(rows)} explanations for {len(plain)} rows")
        out = []
        for prediction, answer in zip(plain, rows, strict=True):
            attributions, _, baseline, _ = explanation.parse(answer, self.schema)
            out.append(Explained(prediction.probabilities, prediction.index, prediction.value,
                                 tuple(attributions), baseline))
        return out


class ExplainCells(AnswerCells):
    """``AnswerCells`` followed by ``columns``' cells: blank for a row with an error."""

    def __init__(self, schema: Schema, version: int):
        super().__init__(schema, version)
        self.no_explanation = [""] * (1 + len(schema.features))

    def __call__(self, prediction: Prediction | None, error: str | None) -> list[Any]:
        cells = super().__call__(prediction, error)
        if isinstance(prediction, Explained):
            return [*cells, prediction.baseline, *prediction.attributions]
        return [*cells, *self.no_explanation]

    def endings(self, predictions: Iterable[Prediction | None]) -> list[str]:
        """``AnswerCells.endings`` with the explanation's cells before each line's end."""
        scored = cast(list[Explained], [p for p in predictions if p is not None])  # ExplainingScorer's
        return [f"{line[:-1]},{','.join(map(repr, (p.baseline, *p.attributions)))}\n"
                for line, p in zip(super().endings(scored), scored, strict=True)]
