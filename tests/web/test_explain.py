"""``/predict`` explains its answers when asked (JSON ``"explain": true`` or the form's checkbox),
from the version that answered, and makes no extra call to serving when not asked."""

from __future__ import annotations

from tests.web.conftest import MODEL
from tests.web.test_schema import FEATURES, SPECIES, client_for

BROWSER_ACCEPT = "text/html,application/xhtml+xml"


def test_json_explain_adds_a_parallel_explanations_list_for_the_demo(client, fake_serving):
    r = client.post("/predict", json={"instances": [[2.0, -3.0]], "explain": True})
    assert r.status_code == 200
    body = r.get_json()
    assert body["predictions"][0][0] > 0  # the answer itself is unchanged
    [why] = body["explanations"]
    assert [f["name"] for f in why["features"]] == ["x2", "x1"]  # largest contribution first
    assert why["features"][0]["contribution"] == -0.3 and why["baseline_prediction"] == 0.5
    assert fake_serving.calls[-1] == ("POST", f"/v1/models/{MODEL}/versions/1:predict")


def test_without_explain_the_predict_path_makes_no_extra_call(client, fake_serving):
    client.post("/predict", json={"instances": [[2.0, -3.0]]})
    before = len(fake_serving.calls)
    r = client.post("/predict", json={"instances": [[2.0, -3.0]]})
    assert "explanations" not in r.get_json()
    assert len(fake_serving.calls) - before == 1


def test_a_named_schema_adds_each_rows_explanation(project, make_app, fake_serving):
    client = client_for(project, make_app, FEATURES, {"column": "species", "classes": list(SPECIES)})
    row = {"island": "Torgersen", "bill_length_mm": 45.0, "flipper_length_mm": 200, "sex": "male"}
    r = client.post("/predict", json={"instances": [row], "explain": True})
    assert r.status_code == 200, r.get_data(as_text=True)
    [prediction] = r.get_json()["predictions"]
    why = prediction["explanation"]
    assert why["class"] == prediction["class"] == "Gentoo"
    assert [f["name"] for f in why["features"]][:2] == ["flipper_length_mm", "bill_length_mm"]


def test_explain_must_be_true_or_false(client):
    r = client.post("/predict", json={"instances": [[1.0, 2.0]], "explain": "yes"})
    assert r.status_code == 400 and "'explain' must be true or false" in r.get_json()["error"]


def test_the_form_checkbox_shows_the_answers_reasons_as_bars(client):
    r = client.post("/predict", data={"x1": "2", "x2": "-3", "explain": "on"}, headers={"Accept": BROWSER_ACCEPT})
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="explanation"' in page
    card = page[page.index('id="explanation"'):]
    raises, lowers = card.index("Raises it"), card.index("Lowers it")
    assert raises < card.index(">x1<") < lowers < card.index(">x2<")  # x1 raises, x2 lowers
    plain = client.post("/predict", data={"x1": "2", "x2": "-3"}, headers={"Accept": BROWSER_ACCEPT})
    assert 'id="explanation"' not in plain.get_data(as_text=True)


def test_openapi_documents_the_explain_flag_and_the_explanation(client):
    doc = client.get("/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    assert schemas["PredictRequest"]["properties"]["explain"]["type"] == "boolean"
    assert schemas["PredictResponse"]["properties"]["explanations"]["items"] == {"$ref": "#/components/schemas/Explanation"}
    assert [f["enum"] for f in [schemas["Explanation"]["properties"]["features"]["items"]["properties"]["name"]]] \
        == [["x1", "x2"]]


def test_explain_class_asks_the_explain_class_signature_with_the_class_index(client, fake_serving):
    r = client.post("/predict", json={"instances": [[2.0, -3.0]], "explain_class": "0"})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["explanations"][0]["class"] == "0"
    assert fake_serving.instances[-1] == [{"x": [2.0, -3.0], "class_index": 0}]  # TF Serving's row format
    wrong = client.post("/predict", json={"instances": [[2.0, -3.0]], "explain_class": "2"})
    assert wrong.status_code == 400 and "'explain_class' must be one of the label's classes 0, 1" \
        in wrong.get_json()["error"]
