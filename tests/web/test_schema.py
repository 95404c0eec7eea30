"""The frontend for a declared schema other than the demo's: a category, optional values, three classes.

/predict takes rows as objects by feature name, validates each value as ingest does (400 naming
the feature), sends TF Serving named instances and answers the class with every class's
probability; the form and /openapi.json are generated from the schema.
"""

from __future__ import annotations

import json
import math
import re

import pytest

from tests.web.conftest import SPECIES, probability

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
FEATURES = {
    "island": {"type": "category", "values": ["Biscoe", "Dream", "Torgersen"]},
    "bill_length_mm": {"type": "float", "min": 30, "max": 60},
    "flipper_length_mm": {"type": "int", "optional": True},
    "sex": {"type": "category", "values": ["female", "male"], "optional": True},
}


def client_for(project, make_app, features: dict, label: dict):
    config = json.loads(project.config_path.read_text())
    config.update(features=features, label=label)
    project.config_path.write_text(json.dumps(config))
    return make_app().test_client()


@pytest.fixture
def client(project, make_app):
    return client_for(project, make_app, FEATURES, {"column": "species", "classes": list(SPECIES)})


def test_objects_by_feature_name_answer_the_class_and_every_class_probability(client, fake_serving):
    rows = [{"island": "Dream", "bill_length_mm": 48.7, "flipper_length_mm": 195, "sex": "female"},
            {"island": "Torgersen", "bill_length_mm": "39.1", "sex": None}]  # flipper absent, sex null: missing
    r = client.post("/predict", json={"instances": rows})
    assert r.status_code == 200, r.json
    assert r.json["predictions"] == [
        {"class": "Chinstrap", "probability": 0.7, "probabilities": {"Adelie": 0.15, "Chinstrap": 0.7, "Gentoo": 0.15}},
        {"class": "Gentoo", "probability": 0.7, "probabilities": {"Adelie": 0.15, "Chinstrap": 0.15, "Gentoo": 0.7}},
    ]
    sent = fake_serving.instances[-1]
    assert sent[0] == {"island": "Dream", "bill_length_mm": 48.7, "flipper_length_mm": 195.0, "sex": "female"}
    assert sent[1]["sex"] == "" and math.isnan(sent[1]["flipper_length_mm"]) and sent[1]["bill_length_mm"] == 39.1


@pytest.mark.parametrize(
    ("row", "fragments"),
    [
        ({"island": "Atlantis", "bill_length_mm": 40}, ["instances[0].island", "Atlantis", "Biscoe, Dream, Torgersen"]),
        ({"island": "Biscoe", "bill_length_mm": 70}, ["instances[0].bill_length_mm", "70", "60"]),
        ({"island": "Biscoe", "bill_length_mm": "long"}, ["instances[0].bill_length_mm", "not a number", "long"]),
        ({"bill_length_mm": 40}, ["instances[0].island", "required"]),
        ({"island": "Biscoe", "bill_length_mm": 40, "flipper_length_mm": 190.5},
         ["instances[0].flipper_length_mm", "integer", "190.5"]),
        ({"island": "Biscoe", "bill_lenght_mm": 40}, ['unknown feature "bill_lenght_mm"', "did you mean 'bill_length_mm'"]),
        (["Biscoe", 40, 190, "male"], ["instances[0] must be an object by feature name, got a list"]),
    ],
)
def test_a_bad_value_is_400_naming_the_feature(client, fake_serving, row, fragments):
    r = client.post("/predict", json={"instances": [row]})
    assert r.status_code == 400
    assert [f for f in fragments if f not in r.json["error"]] == []
    assert fake_serving.instances == []  # nothing reached TF Serving


def test_the_form_is_generated_from_the_schema(client):
    page = client.get("/").get_data(as_text=True)
    island = re.search(r'<select id="island" name="island" required.*?</select>', page, re.S).group(0)
    assert re.findall(r'<option value="(\w*)"', island) == ["Biscoe", "Dream", "Torgersen"]
    sex = re.search(r'<select id="sex" name="sex".*?</select>', page, re.S).group(0)
    assert "required" not in sex.split(">")[0] and re.findall(r'<option value="(\w*)"', sex) == ["", "female", "male"]
    bill = re.search(r'<input id="bill_length_mm"[^>]*>', page, re.S).group(0)
    assert 'type="number"' in bill and 'min="30.0"' in bill and 'max="60.0"' in bill and "required" in bill
    flipper = re.search(r'<input id="flipper_length_mm"[^>]*>', page, re.S).group(0)
    assert 'value=""' in flipper and "required" not in flipper  # optional: may stay blank
    assert "may stay blank" in page


def test_a_browser_form_post_shows_the_class_and_all_probabilities(client, fake_serving):
    form = {"island": "Biscoe", "bill_length_mm": "41", "flipper_length_mm": "", "sex": ""}
    r = client.post("/predict", data=form, headers={"Accept": BROWSER_ACCEPT})
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert '<output id="predicted-class">Adelie</output>' in page
    assert '<strong id="probability">0.7000</strong>' in page
    assert [name for name in SPECIES if f"<td>{name}</td>" in page] == list(SPECIES)
    assert fake_serving.instances[-1][0]["sex"] == ""
    bad = client.post("/predict", data={**form, "island": "Atlantis"}, headers={"Accept": BROWSER_ACCEPT})
    assert bad.status_code == 400
    assert re.search(r'role="alert">.*island.*Atlantis', bad.get_data(as_text=True), re.S)


def test_openapi_describes_the_declared_features_and_classes(client):
    jsonschema = pytest.importorskip("jsonschema")
    doc = client.get("/openapi.json").json
    components = {"components": doc["components"]}
    body = doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    jsonschema.validate(body["example"], {**body["schema"], **components})
    request_schema = {**doc["components"]["schemas"]["PredictRequest"], **components}
    jsonschema.validate({"instances": [{"island": "Dream", "bill_length_mm": 40, "sex": None}]}, request_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"instances": [{"island": "Atlantis", "bill_length_mm": 40}]}, request_schema)
    answer = doc["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]["example"]
    jsonschema.validate(answer, doc["components"]["schemas"]["PredictResponse"])
    assert list(answer["predictions"][0]["probabilities"]) == list(SPECIES)


def test_the_model_page_shows_the_served_schema_and_its_confusion_table(client, project):
    recorded = {"features": FEATURES, "label": {"column": "species", "classes": list(SPECIES)}}
    counts = [[40, 2, 0], [3, 15, 0], [0, 0, 30]]
    project.add_version(1, 94.44, schema=recorded, confusion={"classes": list(SPECIES), "rows": "true class",
                                                              "columns": "predicted class", "counts": counts})
    page = client.get("/").get_data(as_text=True)
    table = re.search(r'<table class="confusion">.*?</table>', page, re.S).group(0)
    cells = [re.findall(r"<td>([^<]*)</td>", row) for row in re.findall(r"<tr><th scope=\"row\">.*?</tr>", table, re.S)]
    assert cells == [["40", "2", "0", "95.2%"], ["3", "15", "0", "83.3%"], ["0", "0", "30", "100.0%"]]
    schema_card = re.search(r'<section class="card" id="schema".*?</section>', page, re.S).group(0)
    assert "Recorded with version 1" in schema_card and "config.json now declares" not in schema_card
    assert all(f"<td>{name}</td>" in schema_card for name in FEATURES)


def test_a_served_version_of_another_schema_is_shown_with_a_note(client, project):
    project.add_version(1, 98.0, schema={"features": {"x1": {"type": "float"}, "x2": {"type": "float"}},
                                         "label": {"column": "label", "classes": [0, 1]}})
    page = client.get("/").get_data(as_text=True)
    assert "config.json now declares a different schema" in page and "<td>x1</td>" in page


def test_a_stored_comparison_of_named_versions_lists_rows_by_feature(client, project, fake_serving):
    fake_serving.versions = {2: "AVAILABLE"}
    comparison = {"a": {"version": 2, "spec": "served", "accuracy_percent": 95.0, "latency_ms": None},
                  "b": {"version": 1, "spec": "previous", "accuracy_percent": 90.0, "latency_ms": None},
                  "rows": 60, "source": "60 held-out rows of the current dataset", "labelled": True,
                  "class_agreement": 0.95, "mean_abs_diff": 0.05, "max_abs_diff": 0.6,
                  "disagree_most": [{"row": 7, "x": {"island": "Dream", "bill_length_mm": 45.25, "sex": None},
                                     "label": "Chinstrap", "a": 0.8, "a_class": "Chinstrap", "b": 0.55,
                                     "b_class": "Adelie", "abs_diff": 0.6}],
                  "computed_at": "2025-11-20T02:01:00Z"}
    project.add_version(2, 95.0, comparison=comparison)
    page = client.get("/").get_data(as_text=True)
    table = re.search(r'<section class="card" id="comparison".*?</section>', page, re.S).group(0)
    assert re.findall(r'<th scope="col">(\w+)</th>', table)[:4] == ["Row", "island", "bill_length_mm", "sex"]
    assert "<td>7</td><td>Dream</td><td>45.2500</td><td></td><td>Chinstrap</td>" in table
    assert "<td>Chinstrap 0.8000</td><td>Adelie 0.5500</td>" in table


def test_an_all_numeric_schema_also_takes_lists_in_feature_order(project, make_app, fake_serving):
    numeric = client_for(project, make_app, {"width": {"type": "float"}, "depth": {"type": "float", "optional": True}},
                         {"column": "kind", "classes": list(SPECIES)})
    r = numeric.post("/predict", json={"instances": [[1.5, None], {"width": 2.0, "depth": 3.0}]})
    assert r.status_code == 200, r.json
    first, second = fake_serving.instances[-1]
    assert first["width"] == 1.5 and math.isnan(first["depth"]) and second == {"width": 2.0, "depth": 3.0}
    short = numeric.post("/predict", json={"instances": [[1.5]]})
    assert short.status_code == 400 and "exactly 2 values in the order width, depth" in short.json["error"]


def test_a_packed_schema_with_bounds_keeps_the_demo_answer_and_checks_the_bounds(project, make_app, fake_serving):
    bounded = client_for(project, make_app, {"x1": {"type": "float", "min": 0}, "x2": {"type": "float", "max": 5}},
                         {"column": "label", "classes": [0, 1]})
    assert bounded.post("/predict", json={"instances": [[1.5, 2.3]]}).json == {
        "predictions": [[pytest.approx(probability(1.5, 2.3))]]}
    low = bounded.post("/predict", json={"instances": [[1.5, 2.3], [-1, 2]]})
    assert low.status_code == 400 and low.json["error"].startswith("instances[1].x1") and "-1" in low.json["error"]
    form = bounded.post("/predict", data={"x1": "1", "x2": "9"})
    assert form.status_code == 400 and form.json["error"].startswith("x2")
    page = bounded.get("/").get_data(as_text=True)
    assert re.search(r'<input id="x1"[^>]*type="number"[^>]*min="0.0"', page)


def test_the_shadow_comparison_agrees_on_the_class_and_measures_every_probability(registry):
    from prometheus_client import generate_latest

    from modelops.core.schema import Schema
    from modelops.web.traffic import Mirror, RolloutMetrics

    schema = Schema.from_config(FEATURES, {"column": "species", "classes": list(SPECIES)})
    stable = [{"probabilities": [0.7, 0.2, 0.1], "class": "Adelie"}, {"probabilities": [0.1, 0.8, 0.1], "class":
                                                                       "Chinstrap"}]
    candidate = [{"probabilities": [0.6, 0.3, 0.1], "class": "Adelie"}, {"probabilities": [0.1, 0.4, 0.5], "class":
                                                                          "Gentoo"}]

    class Candidate:
        def predict(self, rows, version):
            return candidate

    Mirror(Candidate(), RolloutMetrics(registry), schema).compare([{}, {}], stable, 2)
    text = generate_latest(registry).decode()
    assert 'modelops_frontend_shadow_rows_total{result="agree",version="2"} 1.0' in text
    assert 'modelops_frontend_shadow_rows_total{result="disagree",version="2"} 1.0' in text
    assert 'modelops_frontend_shadow_abs_difference_sum{version="2"} 0.5' in text  # 0.1 + 0.4
