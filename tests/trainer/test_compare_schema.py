"""``compare`` for a declared (named) schema: input rows by column name, answers as class probabilities."""

from __future__ import annotations

import math

import pytest

from modelops.core.errors import ServingHTTPError, UsageError
from modelops.core.predictions import Prediction
from modelops.core.schema import Feature, Label, Schema
from modelops.trainer import compare

PENGUINS = Schema((Feature("island", "category", ("Biscoe", "Dream")), Feature("bill", "float", optional=True)),
                  Label("species", ("Adelie", "Chinstrap", "Gentoo")))


def test_an_input_file_is_read_by_column_name_into_named_instances(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("species,bill,island\nGentoo,,Dream\nAdelie,41.5,Biscoe\n")
    rows = compare.read_csv(path, 1e6, 100, PENGUINS)
    assert rows.labels == [2, 0]
    assert rows.x[1] == {"island": "Biscoe", "bill": 41.5}
    assert rows.x[0]["island"] == "Dream" and math.isnan(rows.x[0]["bill"])


@pytest.mark.parametrize(("content", "message"), [
    ("island,bill,species\nAtlantis,40,Adelie\n", "line 2: island"),
    ("island,bill,species\nDream,40,Penguin\n", "line 2: species must be one of Adelie, Chinstrap, Gentoo"),
    ("x1,x2\n1,2\n", r"header must be the columns island,bill\[,species\]"),
])
def test_a_bad_input_file_names_the_line_and_column(tmp_path, content, message):
    path = tmp_path / "rows.csv"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        compare.read_csv(path, 1e6, 100, PENGUINS)


class Answers:
    """A ServingClient stand-in: each version answers its fixed named prediction."""

    def __init__(self, by_version: dict):
        self.by_version = by_version

    def predict(self, rows, version):
        return [self.by_version[version]]


def test_agreement_difference_and_accuracy_follow_the_predicted_class():
    rows = compare.Rows([{"island": "Dream", "bill": 40.0}, {"island": "Biscoe", "bill": math.nan}], [1, 0],
                        "2 rows", PENGUINS)
    a = {"probabilities": [0.2, 0.7, 0.1], "class": "Chinstrap"}
    b = {"probabilities": [0.6, 0.3, 0.1], "class": "Adelie"}
    answers = compare.ask_serving(Answers({2: a, 1: b}), (2, 1), rows)
    assert answers[0][0][0] == Prediction((0.2, 0.7, 0.1), 1)
    result = compare.summarize((2, 1), ("served", "previous"), rows, answers)
    assert result["class_agreement"] == 0.0 and result["max_abs_diff"] == pytest.approx(0.4)
    assert (result["a"]["accuracy_percent"], result["b"]["accuracy_percent"]) == (50.0, 50.0)
    worst = result["disagree_most"][0]
    assert (worst["a_class"], worst["b_class"], worst["label"]) == ("Chinstrap", "Adelie", "Chinstrap")
    assert worst["x"] == {"island": "Dream", "bill": 40.0}
    assert any("Chinstrap 0.7000" in line for line in compare.format_text(result))
    with pytest.raises(ServingHTTPError, match="not class probabilities"):
        compare.ask_serving(Answers({2: [0.5], 1: b}), (2, 1), rows)
