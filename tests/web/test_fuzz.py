"""Property-based fuzzing of /predict: whatever a client sends, the answer is never a 500."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=20,
)
rows = st.lists(st.floats() | st.integers() | st.booleans() | st.text(max_size=3), min_size=0, max_size=3)
documents = (
    json_values
    | st.fixed_dictionaries({"instances": json_values})
    | st.fixed_dictionaries({"instances": st.lists(rows | json_values, max_size=5)})
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data",
        "",
        "application/json; charset=latin-1",
    ]
)
accepts = st.sampled_from(["*/*", "text/html", "application/json", "", "text/html;q=0.1, application/json"])
settings_ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check(response):
    assert response.status_code in (200, 400, 413), response.get_data(as_text=True)[:300]
    if response.mimetype == "application/json":
        body = response.json
        assert ("predictions" in body) if response.status_code == 200 else body["error"]


@settings_
@given(doc=documents, accept=accepts)
def test_any_json_document_gets_a_prediction_or_a_clear_400(client, doc, accept):
    body = json.dumps(doc, allow_nan=True)
    _check(client.post("/predict", data=body, headers={"Content-Type": "application/json", "Accept": accept}))


@settings_
@given(body=st.binary(max_size=200), content_type=content_types, accept=accepts)
def test_any_bytes_with_any_content_type_never_crash(client, body, content_type, accept):
    _check(client.post("/predict", data=body, headers={"Content-Type": content_type, "Accept": accept}))


@settings_
@given(form=st.dictionaries(st.sampled_from(["x1", "x2", "x3", ""]), st.text(max_size=12), max_size=3), accept=accepts)
def test_any_form_gets_a_prediction_or_a_clear_400(client, form, accept):
    _check(client.post("/predict", data=form, headers={"Accept": accept}))
