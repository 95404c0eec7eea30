"""The declared schema: config sections validated with the key named, raw values typed or refused by name."""

import math

import pytest

from harness import REPO
from harness.project import write_config
from modelops.core.config import load_config
from modelops.core.errors import ConfigError, SchemaValueError
from modelops.core.schema import DEMO_SCHEMA, Feature, Label, Schema

PENGUINS = {
    "island": {"type": "category", "values": ["Biscoe", "Dream", "Torgersen"]},
    "bill_length_mm": {"type": "float", "min": 20, "max": 70, "optional": True},
    "flipper_length_mm": {"type": "int", "min": 150, "max": 250},
    "sex": {"type": "category", "optional": True},
}
SPECIES = {"column": "species", "classes": ["Adelie", "Chinstrap", "Gentoo"]}


def test_the_shipped_config_declares_the_packed_demo():
    schema = load_config(REPO / "config.json").schema
    assert schema == DEMO_SCHEMA
    assert schema.packed and schema.names == ("x1", "x2") and schema.label.classes == (0, 1)
    assert schema.instance_for_serving({"x1": 1.5, "x2": 2.3}) == [1.5, 2.3]


def test_a_config_without_schema_is_the_demo(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"model_name": "m"}')
    assert load_config(path).schema == DEMO_SCHEMA


def test_a_declared_table_loads_in_order_and_is_named(tmp_path):
    config = load_config(write_config(tmp_path, features=PENGUINS, label=SPECIES))
    schema = config.schema
    assert schema.names == ("island", "bill_length_mm", "flipper_length_mm", "sex")
    assert not schema.packed and schema.num_classes == 3
    assert schema.label.class_names == ("Adelie", "Chinstrap", "Gentoo")
    assert schema.feature("sex").values is None and schema.feature("sex").optional
    instance = schema.instance_for_serving(
        schema.parse_row({"island": "Dream", "bill_length_mm": "", "flipper_length_mm": "190", "sex": None}))
    assert instance["island"] == "Dream" and instance["flipper_length_mm"] == 190.0 and instance["sex"] == ""
    assert math.isnan(instance["bill_length_mm"])


def test_an_all_float_three_class_schema_is_named():
    schema = Schema((Feature("a"), Feature("b")), Label("y", ("p", "q", "r")))
    assert not schema.packed
    assert schema.instance_for_serving({"a": 1.0, "b": 2.0}) == {"a": 1.0, "b": 2.0}


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({"features": {"a": {"type": "flaot"}}, "label": SPECIES}, "'features.a.type' must be one of float, int, "
                                                                   "category, date, datetime, got \"flaot\" (did you mean 'float'?)"),
        ({"features": {"a": {"tpye": "float"}}, "label": SPECIES}, "unknown key 'features.a.tpye' (did you mean "
                                                                   "'features.a.type'?)"),
        ({"features": {"a": {"type": "float"}}, "label": {"column": "y", "classes": []}}, "'label.classes' must be a "
                                                                                          "non-empty list"),
        ({"features": {"a": {"type": "float"}}, "label": {"column": "y", "classes": ["only"]}}, "two or more"),
        ({"features": {"a": {"type": "float"}}, "label": {"column": "y", "classes": [1, "1"]}}, "twice"),
        ({"features": {"a": {"type": "float"}}, "label": {"colum": "y", "classes": [0, 1]}}, "unknown key "
                                                                                            "'label.colum' (did you "
                                                                                            "mean 'label.column'?)"),
        ({"features": {"y": {"type": "float"}}, "label": {"column": "y", "classes": [0, 1]}}, "'label.column' 'y' is "
                                                                                              "also declared"),
        ({"features": {"a": {"type": "float", "values": ["x"]}}, "label": SPECIES}, "'features.a.values' is only"),
        ({"features": {"a": {"type": "category", "min": 1}}, "label": SPECIES}, "'features.a.min' is only"),
        ({"features": {"a": {"type": "float", "min": 5, "max": 1}}, "label": SPECIES}, "'features.a.min' (5.0) must "
                                                                                       "not exceed"),
        ({"features": {"a": {"type": "float", "optional": "yes"}}, "label": SPECIES}, "'features.a.optional' must be "
                                                                                      "true or false"),
        ({"features": {"bill length": {"type": "float"}}, "label": SPECIES}, "feature name 'bill length'"),
        ({"features": {"a": {"type": "float"}}, "label": None}, "'label' is missing"),
        ({"features": {}, "label": SPECIES}, "'features' must be a non-empty JSON object"),
        ({"featurs": 1}, "unknown key 'featurs' (did you mean 'features'?)"),
        ({"data": {"missing_values": "NA"}}, "'data.missing_values' must be a list of strings"),
        ({"gate": {"metric": "f1"}}, "'gate.metric' must be one of accuracy, balanced_accuracy, macro_f1"),
        ({"train": {"params": [1]}}, "'train.params' must be a JSON object"),
    ],
)
def test_bad_schemas_name_the_key(tmp_path, sections, expected):
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, **sections))
    assert expected in str(err.value)


def test_a_key_given_twice_is_refused(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"features": {"a": {"type": "float"}, "a": {"type": "int"}}, '
                    '"label": {"column": "y", "classes": [0, 1]}}')
    with pytest.raises(ConfigError, match="'a' is given twice"):
        load_config(path)


@pytest.mark.parametrize(
    ("feature", "raw", "reason"),
    [
        (Feature("w", "float"), "abc", "is not a number"),
        (Feature("w", "float"), "inf", "must be finite"),
        (Feature("w", "int"), "3.5", "must be an integer"),
        (Feature("w", "float", min=0.0), "-1", "must be at least 0"),
        (Feature("w", "float", max=10.0), 11, "must be at most 10"),
        (Feature("w", "float"), "NA", "is required but missing"),
        (Feature("w", "float"), None, "is required but missing"),
        (Feature("w", "category", values=("Biscoe", "Dream")), "Bisco", "must be one of Biscoe, Dream, got 'Bisco' "
                                                                       "(did you mean 'Biscoe'?)"),
        (Feature("w", "float"), True, "is not a number"),
    ],
)
def test_bad_values_name_the_feature_and_the_value(feature, raw, reason):
    with pytest.raises(SchemaValueError) as err:
        feature.parse(raw)
    assert err.value.feature == "w" and reason in err.value.reason
    assert str(err.value).startswith("w ")
    if raw not in (None, "NA"):
        assert repr(raw) in str(err.value)


def test_values_are_typed_and_missing_spellings_configurable():
    assert Feature("w", "int").parse(" 190 ") == 190.0
    assert Feature("w", "float").parse(39.1) == 39.1
    assert Feature("w", "category").parse(" Dream ") == "Dream"  # learned vocabulary: any text
    assert Feature("w", "float", optional=True).parse("NaN") is None
    assert Feature("w", "float", optional=True, missing_values=("?",)).parse("?") is None
    assert Feature("w", "float", optional=True, missing_values=("?",)).parse("  ") is None  # blank is always missing
    with pytest.raises(SchemaValueError):
        Feature("w", "float", optional=True, missing_values=("?",)).parse("NA")


def test_labels_map_to_their_class_position():
    assert Label("y", (0, 1)).index("1") == 1
    assert Label("y", ("Adelie", "Gentoo")).index(" Gentoo ") == 1
    with pytest.raises(SchemaValueError, match="y must be 0 or 1, got '2'"):
        Label("y", (0, 1)).index("2")
    with pytest.raises(SchemaValueError, match="y must be one of a, b, c, got 'd'"):
        Label("y", ("a", "b", "c")).index("d")


def test_the_schema_round_trips_through_its_config_form():
    schema = Schema.from_config(PENGUINS, SPECIES)
    again = Schema.from_config(**schema.to_config())
    assert again == schema
