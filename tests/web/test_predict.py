"""POST /predict: what JSON clients, curl users and browsers get back, success and failure."""

from __future__ import annotations

import json

import pytest

from tests.web.conftest import probability

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


def test_json_rows_get_one_prediction_each_and_the_answering_version(client, fake_serving):
    fake_serving.versions = {1: "END", 2: "AVAILABLE"}
    r = client.post("/predict", json={"instances": [[1.5, 2.3], [0.8, -1.2]]})
    assert r.status_code == 200
    assert [row[0] for row in r.json["predictions"]] == pytest.approx([probability(1.5, 2.3), probability(0.8, -1.2)])
    assert r.headers["X-Model-Version"] == "2"
    assert ("POST", "/v1/models/simple_classifier/versions/2:predict") in fake_serving.calls


def test_rows_as_objects_are_accepted(client):
    r = client.post("/predict", json={"instances": [{"x1": 1.5, "x2": 2.3}, {"x2": -1.2, "x1": 0.8}]})
    assert r.status_code == 200
    assert [row[0] for row in r.json["predictions"]] == pytest.approx([probability(1.5, 2.3), probability(0.8, -1.2)])


def test_curl_form_post_gets_json_as_the_readme_promises(client):
    # curl -X POST http://localhost:5002/predict -d "x1=1.5&x2=2.3"
    r = client.post(
        "/predict",
        data="x1=1.5&x2=2.3",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "*/*", "User-Agent": "curl/8.5.0"},
    )
    assert r.status_code == 200
    assert r.mimetype == "application/json"
    assert list(r.json) == ["predictions"]
    assert r.json["predictions"][0][0] == pytest.approx(probability(1.5, 2.3))


def test_browser_form_post_gets_the_page_with_probability_class_and_version(client, fake_serving):
    fake_serving.versions = {3: "AVAILABLE"}
    r = client.post("/predict", data={"x1": "-2", "x2": "0.5"}, headers={"Accept": BROWSER_ACCEPT})
    assert r.status_code == 200
    assert r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    assert f'<output id="probability">{probability(-2, 0.5):.4f}</output>' in page
    assert '<strong id="predicted-class">0</strong>' in page
    assert '<strong id="answered-by">3</strong>' in page
    assert 'value="-2"' in page and 'value="0.5"' in page  # the form keeps what was typed


def test_browser_form_error_rerenders_the_page_with_the_message(client):
    r = client.post("/predict", data={"x1": "abc", "x2": "1"}, headers={"Accept": BROWSER_ACCEPT})
    assert r.status_code == 400
    assert r.mimetype == "text/html"
    page = r.get_data(as_text=True)
    assert 'role="alert"' in page
    assert "x1 must be a number, got &#34;abc&#34;" in page
    assert 'value="abc"' in page


ONE = {"instances": [[1.0, 2.0]]}


@pytest.mark.parametrize(
    ("body", "content_type", "fragment"),
    [
        ("x1=1&x2=2", "text/plain", "unsupported Content-Type 'text/plain'"),
        ('{"instances": [[1, 2]]', "application/json", "not valid JSON"),
        ("", "application/json", "body is empty"),
        ("[[1, 2]]", "application/json", "must be an object with an 'instances' list"),
        ('{"inputs": [[1, 2]]}', "application/json", "must be an object with an 'instances' list"),
        ('{"instances": []}', "application/json", "non-empty list"),
        ('{"instances": [1, 2]}', "application/json", "instances[0] must be a list of exactly 2 numbers"),
        ('{"instances": [[1, 2, 3]]}', "application/json", "got a list of 3 values"),
        ('{"instances": [[1]]}', "application/json", "got a list of 1 values"),
        ('{"instances": [[1, "2"]]}', "application/json", 'instances[0][1] must be a number, got a string "2"'),
        ('{"instances": [[true, 2]]}', "application/json", "instances[0][0] must be a number, got a boolean"),
        ('{"instances": [[null, 2]]}', "application/json", "instances[0][0] must be a number"),
        ('{"instances": [[NaN, 2]]}', "application/json", "instances[0][0] must be a finite number"),
        ('{"instances": [[1, Infinity]]}', "application/json", "instances[0][1] must be a finite number"),
        ('{"instances": [[1, -Infinity]]}', "application/json", "must be a finite number"),
        ('{"instances": [[1, 1e39]]}', "application/json", "32-bit float"),
        ('{"instances": [{"x1": 1}]}', "application/json", "exactly the keys x1 and x2"),
        ('{"instances": [{"x1": 1, "x2": 2, "x3": 3}]}', "application/json", "exactly the keys x1 and x2"),
        ('{"instances": [{"x1": "a", "x2": 2}]}', "application/json", "instances[0].x1 must be a number"),
        ("x1=1", "application/x-www-form-urlencoded", "x2 is required"),
        ("x1=&x2=2", "application/x-www-form-urlencoded", "x1 is required"),
        ("x1=one&x2=2", "application/x-www-form-urlencoded", "x1 must be a number"),
        ("x1=nan&x2=2", "application/x-www-form-urlencoded", "x1 must be a finite number"),
        ("x1=1&x2=inf", "application/x-www-form-urlencoded", "x2 must be a finite number"),
    ],
)
def test_bad_input_gets_400_saying_what_is_wrong_with_an_example(client, fake_serving, body, content_type, fragment):
    r = client.post("/predict", data=body, headers={"Content-Type": content_type})
    assert r.status_code == 400
    assert fragment in r.json["error"]
    assert "e.g." in r.json["error"] or "finite number within" in r.json["error"]
    assert not [c for c in fake_serving.calls if c[0] == "POST"]  # nothing bad reaches TF Serving


def test_no_content_type_is_refused_with_both_accepted_formats(client):
    r = client.post("/predict", data=b"x")
    assert r.status_code == 400
    assert "application/json" in r.json["error"] and "x1=1.5&x2=2.3" in r.json["error"]


def test_too_many_rows_is_refused_with_the_limit(make_app):
    client = make_app(MAX_INSTANCES=3).test_client()
    assert client.post("/predict", json={"instances": [[1, 2]] * 3}).status_code == 200
    r = client.post("/predict", json={"instances": [[1, 2]] * 4})
    assert r.status_code == 400
    assert "4 instances, at most 3" in r.json["error"]


def test_max_instances_comes_from_the_environment(make_app, monkeypatch):
    monkeypatch.setenv("MAX_INSTANCES", "2")
    assert make_app().test_client().post("/predict", json={"instances": [[1, 2]] * 3}).status_code == 400


def test_oversized_body_gets_413(make_app):
    client = make_app(MAX_CONTENT_LENGTH=100).test_client()
    big = json.dumps({"instances": [[1.5, 2.5]] * 20})
    r = client.post("/predict", data=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert "larger than 100 bytes" in r.json["error"]
    r = client.post("/predict", data={"x1": "1" * 200, "x2": "2"}, headers={"Accept": BROWSER_ACCEPT})
    assert r.status_code == 413
    assert "larger than 100 bytes" in r.get_data(as_text=True)


@pytest.mark.parametrize(
    ("mode", "status", "fragment"),
    [
        ("down", 503, "TF Serving is unavailable; retry later (request id "),
        ("timeout", 504, "TF Serving is unavailable: it did not answer in time"),
        ("error500", 502, "kernel exploded"),
        ("garbage", 502, "not JSON"),
    ],
)
def test_upstream_failures_map_to_gateway_codes(client, fake_serving, mode, status, fragment):
    fake_serving.mode = mode
    r = client.post("/predict", json=ONE)
    assert r.status_code == status
    assert fragment in r.json["error"]


def test_upstream_4xx_is_passed_on_with_its_message(client, fake_serving):
    fake_serving.mode = "reject400"
    r = client.post("/predict", json=ONE)
    assert r.status_code == 400
    assert r.json["error"] == "TF Serving rejected the request: Expecting tensor size: 2 but got: 3"


@pytest.mark.parametrize("versions", [{}, {1: "LOADING"}, {1: "END"}])
def test_no_model_loaded_yet_is_503_saying_so(client, fake_serving, versions):
    fake_serving.versions = versions
    r = client.post("/predict", json=ONE)
    assert r.status_code == 503
    assert "no model 'simple_classifier' loaded" in r.json["error"]
    assert "retrain_pipeline.py" in r.json["error"]


def test_a_version_unloaded_after_caching_is_refreshed_not_reported(client, fake_serving):
    assert client.post("/predict", json=ONE).headers["X-Model-Version"] == "1"
    fake_serving.versions = {1: "END", 2: "AVAILABLE"}  # swapped within the cache lifetime
    r = client.post("/predict", json=ONE)
    assert r.status_code == 200
    assert r.headers["X-Model-Version"] == "2"


def test_get_on_predict_is_405_naming_the_method_to_use(client):
    r = client.get("/predict")
    assert r.status_code == 405
    assert "use" in r.json["error"] and "POST" in r.json["error"]
    assert "POST" in r.headers["Allow"]


@pytest.mark.parametrize("mode", ["down", "timeout"])
def test_clients_are_not_told_where_serving_is_nor_its_credentials(make_app, fake_serving, caplog, mode):
    """Issue 33 finding 4: the client gets a request id; the address and the error go to the log only."""
    fake_serving.mode = mode
    client = make_app(TF_HOST="https://modelops:s3cret-token@tfserving.test:8501").test_client()
    for r in (client.post("/predict", json=ONE), client.get("/readyz"),
              client.get("/", headers={"Accept": BROWSER_ACCEPT})):
        text = r.get_data(as_text=True)
        assert "TF Serving is unavailable" in text
        assert "tfserving.test" not in text and "s3cret" not in text
        request_id = r.headers["X-Request-Id"]
        assert f"request id {request_id}" in text
        logged = [m for m in caplog.messages if request_id in m]
        assert len(logged) == 1 and "***@tfserving.test:8501" in logged[0]
    assert "s3cret" not in caplog.text
