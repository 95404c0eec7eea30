"""Reading a CSV batch: any column order, the one header rule, each bad row named by line and column."""

import io

import numpy as np
import pytest

from modelops.core.config import DataConfig
from modelops.core.errors import DataError
from modelops.core.schema import Schema
from modelops.trainer.data import csv_rows

LIMITS = DataConfig()


def test_good_batch_parses_in_any_column_order():
    x, y = csv_rows.parse_batch(b"label,x2,x1\n1,2.3,1.5\n", LIMITS)
    assert x.tolist() == [[1.5, pytest.approx(2.3)]]
    assert y.tolist() == [1.0]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"x1,x2,label\n1.5,abc,1\n", "line 2: x2 is not a number: 'abc'"),
        (b"x1,x2,label\nnan,1,1\n", "line 2: x1 must be finite"),
        (b"x1,x2,label\n1,inf,0\n", "x2 must be finite"),
        (b"x1,x2,label\n1,1,2\n", "label must be 0 or 1, got '2'"),
        (b"x1,label\n1,1\n", "header must be the columns x1,x2,label"),
        (b"", "empty file"),
        (b"x1,x2,label\n", "0 data rows"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "binary"),
        (b"x1,x2,label\n1,2\n", "expected 3 fields, got 2"),
        (b"x1,x2,label\n1e9,2,1\n", "line 2: x1 must be a finite number within ±1000 (data.max_abs_feature"),
    ],
)
def test_bad_batches_say_what_is_wrong(content, reason):
    with pytest.raises(DataError) as err:
        csv_rows.parse_batch(content, LIMITS)
    assert reason in str(err.value)


def test_many_bad_rows_are_summarised():
    rows = b"".join(b"1,x,1\n" for _ in range(20))
    with pytest.raises(DataError, match=r"line 6: .*\(and 15 more\)"):
        csv_rows.parse_batch(b"x1,x2,label\n" + rows, LIMITS)


PENGUIN_SCHEMA = Schema.from_config(
    {"island": {"type": "category", "values": ["Biscoe", "Dream"]},
     "bill_length_mm": {"type": "float", "min": 25, "max": 70, "optional": True},
     "sex": {"type": "category", "optional": True}},
    {"column": "species", "classes": ["Adelie", "Chinstrap", "Gentoo"]})


def test_a_declared_table_is_read_by_header_name_with_blanks_and_extra_columns():
    content = (b"year,Species,sex,island,bill_length_mm\n"
               b"2007,Gentoo,male,Biscoe,46.1\n"
               b"2008,Adelie,NA,Dream,\n")
    batch = csv_rows.read_rows(io.BytesIO(content), LIMITS, PENGUIN_SCHEMA)
    assert batch.ignored == ("year",), "the undeclared column is named, not used"
    assert batch.numbers[:, -1].tolist() == [2.0, 0.0], "labels as their class position"
    assert batch.numbers[0, 0] == pytest.approx(46.1) and np.isnan(batch.numbers[1, 0]), "a blank is missing"
    assert batch.text.tolist() == [["Biscoe", "male"], ["Dream", ""]]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"island,species\nBiscoe,Gentoo\n", "header must be the columns island,bill_length_mm,sex,species"),
        (b"island,bill_length_mm,sex,species\nBisco,40,male,Gentoo\n",
         "line 2: island must be one of Biscoe, Dream, got 'Bisco' (did you mean 'Biscoe'?)"),
        (b"island,bill_length_mm,sex,species\nDream,700,male,Gentoo\n", "line 2: bill_length_mm must be at most 70, "
                                                                         "got '700'"),
        (b"island,bill_length_mm,sex,species\n,40,male,Gentoo\n", "line 2: island is required but missing"),
        (b"island,bill_length_mm,sex,species\nDream,40,male,Emperor\n",
         "line 2: species must be one of Adelie, Chinstrap, Gentoo, got 'Emperor'"),
        (b"island,island,bill_length_mm,sex,species\nDream,Dream,40,male,Adelie\n", "'island' more than once"),
    ],
)
def test_a_bad_batch_of_a_declared_table_names_line_column_and_value(content, reason):
    with pytest.raises(DataError) as err:
        csv_rows.read_rows(io.BytesIO(content), LIMITS, PENGUIN_SCHEMA)
    assert reason in str(err.value)
