"""Dates read once into ISO 8601 text, and a number label's predictions read, compared and answered."""

from __future__ import annotations

import pytest

from modelops.core import predictions
from modelops.core.errors import SchemaValueError, ServingHTTPError
from modelops.core.moments import as_days
from modelops.core.schema import Feature, Schema

CARS = Schema.from_config({"Year": {"type": "date", "format": "%d/%m/%Y"}, "at": {"type": "datetime", "optional": True}},
                          {"column": "mpg", "type": "number", "min": 0})


def test_a_date_is_read_with_its_format_or_iso_and_kept_as_iso_text():
    year = CARS.feature("Year")
    assert year.parse("01/06/1976") == "1976-06-01"
    assert year.parse("1976-06-01") == "1976-06-01", "ISO 8601 is always accepted (what serving takes)"
    assert CARS.feature("at").parse("2024-07-01T15:45:00+02:00") == "2024-07-01T13:45:00", "a zone becomes UTC"
    assert CARS.feature("at").parse("") is None
    with pytest.raises(SchemaValueError, match=r"Year is not a date: 'June 76'; send a date like 2024-07-01"):
        year.parse("June 76")
    assert as_days("1970-01-02") == 1.0 and as_days("1970-01-01T12:00:00") == 0.5


def test_a_number_label_is_read_within_its_bounds_and_answers_a_value():
    assert CARS.label.value("23.5") == 23.5
    with pytest.raises(SchemaValueError, match="at least 0"):
        CARS.label.value("-1")
    answer = predictions.read(23.4, CARS)
    assert predictions.as_json(answer, CARS) == {"value": 23.4}
    assert predictions.read([23.4], CARS).value == 23.4, "a [None, 1] output reads the same"
    assert predictions.agree(answer, predictions.read(24.0, CARS)), "within 5 % of the larger value"
    assert not predictions.agree(answer, predictions.read(30.0, CARS))
    assert predictions.difference(answer, predictions.read(30.0, CARS)) == pytest.approx(6.6)
    with pytest.raises(ServingHTTPError):
        predictions.read({"probabilities": [0.5, 0.5]}, CARS)


def test_the_schema_round_trips_through_metrics_json_and_refuses_what_does_not_fit():
    assert Schema.from_config(**CARS.to_config()) == CARS
    assert "-> mpg (number)" in CARS.describe()
    assert Feature("d", "date").expected() == "a date like 2024-07-01"
