"""The file scorer shared by the command, the upload and CSV ``/predict``: rows by header name, bad rows
marked with the ``/predict`` wording, answers in input order, and a bounded read-ahead whatever the size."""

from __future__ import annotations

import pytest

from modelops.core import batch_score
from modelops.core.errors import UsageError
from modelops.core.predictions import Prediction
from modelops.core.schema import DEMO_SCHEMA, Schema
from tests.core.test_chunk_columns import per_row
from tests.core.test_schema import PENGUINS, SPECIES

NAMED = Schema.from_config(PENGUINS, SPECIES)


class Answering:
    """A serving client's ``predict``: the packed demo answers x1 / 10 (chunks kept for inspection)."""

    def __init__(self):
        self.chunks: list[list] = []

    def predict_columns(self, rows, version=None):  # the packed demo's columnar inputs: the matrix
        self.chunks.append(list(rows))
        return [[min(1.0, max(0.0, row[0] / 10))] for row in rows]


def _collect():
    out: list[tuple] = []

    def sink(rows, predictions, errors):
        out.extend(zip(rows, predictions, errors, strict=True))
    return out, sink


def test_rows_come_back_in_order_with_columns_found_by_name_and_bad_rows_marked():
    rows = [["a", "5", "1"], ["b", "", "1"], ["c", "2", "x"], ["d", "8", "0", "9"], ["e", "1", "1"]]
    out, sink = _collect()
    client = Answering()
    summary = batch_score.FileScorer(client, DEMO_SCHEMA, 3, chunk_rows=2).run(["id", "x1", "x2"], iter(rows), sink)
    assert [row[0] for row, _p, _e in out] == ["a", "b", "c", "d", "e"]
    assert [p.probabilities[1] if p else None for _r, p, _e in out] == [0.5, None, None, None, 0.1]
    assert out[1][2] == "x1 is required but missing; send a number"  # Feature.parse's words, as /predict says
    assert out[2][2].startswith("x2 is not a number: 'x'")
    assert "4 values" in out[3][2] and "'9'" in out[3][2]
    assert (summary.rows, summary.errors, summary.scored, summary.version) == (5, 3, 2, 3)
    assert summary.first_errors[0] == "row 2: x1 is required but missing; send a number"
    assert sum(map(len, client.chunks)) == 2  # bad rows never reach serving


def test_named_rows_read_each_cell_with_the_schema():
    reader = batch_score.RowReader(NAMED, ["species", "sex", "island", "flipper_length_mm", "bill_length_mm"])
    instance, error = per_row(reader, ["Adelie", "", "Dream", "190", "NA"])
    assert error is None and instance["island"] == "Dream" and instance["sex"] == ""
    assert instance["flipper_length_mm"] == 190.0 and instance["bill_length_mm"] != instance["bill_length_mm"]
    _, error = per_row(reader, ["Adelie", "", "Atlantis", "190", "40"])
    assert error.startswith("island must be one of Biscoe, Dream, Torgersen, got 'Atlantis'")
    _, error = per_row(reader, ["Adelie", "", "Dream", "190.5", "40"])
    assert error.startswith("flipper_length_mm must be an integer")


def test_the_header_follows_ingest_s_rule_any_case_any_order_each_once():
    with pytest.raises(UsageError, match="no column 'flipper_length_mm'"):
        batch_score.RowReader(NAMED, ["island", "bill_length_mm", "sex"])
    with pytest.raises(UsageError, match="'island' more than once"):
        batch_score.RowReader(NAMED, ["island", "Island", "bill_length_mm", "sex", "flipper_length_mm"])
    reader = batch_score.RowReader(NAMED, [" Flipper_Length_mm", "SEX", "island ", "bill_length_mm"])
    assert reader.columns == [2, 3, 0, 1]


def test_the_answer_columns_name_every_class():
    assert batch_score.answer_columns(NAMED) == ["class", "probability_Adelie", "probability_Chinstrap",
                                                 "probability_Gentoo", "model_version", "error"]
    cells = batch_score.AnswerCells(NAMED, 4)
    assert cells(Prediction((0.2, 0.7, 0.1), 1), None) == ["Chinstrap", 0.2, 0.7, 0.1, "4", ""]
    assert cells(None, "island is required") == ["", "", "", "", "4", "island is required"]


@pytest.mark.parametrize("in_flight", [1, 2, 4])
def test_the_reader_never_runs_more_than_the_chunks_in_flight_ahead_of_the_output(in_flight):
    chunk, total = 100, 5000
    state = {"read": 0, "written": 0, "ahead": 0}

    def rows():
        for i in range(total):
            state["read"] += 1
            state["ahead"] = max(state["ahead"], state["read"] - state["written"])
            yield [str(i), "1", "2"]

    def sink(rows_, predictions, errors):
        state["written"] += len(rows_)

    summary = batch_score.FileScorer(Answering(), DEMO_SCHEMA, 1, chunk_rows=chunk, in_flight=in_flight).run(
        ["id", "x1", "x2"], rows(), sink)
    assert summary.rows == state["written"] == total
    assert state["ahead"] <= chunk * (in_flight + 1)
