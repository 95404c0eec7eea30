"""Health and readiness probes, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families


def test_healthz_answers_even_with_serving_down(client, fake_serving):
    fake_serving.mode = "down"
    r = client.get("/healthz")
    assert (r.status_code, r.json) == (200, {"status": "ok"})
    assert fake_serving.calls == []


def test_readyz_reports_the_available_version(client, fake_serving):
    fake_serving.versions = {2: "AVAILABLE", 1: "END"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json == {"status": "ready", "model_name": "simple_classifier", "version": 2}


@pytest.mark.parametrize(
    ("mode", "versions"),
    [("down", {1: "AVAILABLE"}), ("timeout", {1: "AVAILABLE"}), (None, {}), (None, {1: "LOADING"})],
)
def test_readyz_is_503_until_a_version_is_available(client, fake_serving, mode, versions):
    fake_serving.mode, fake_serving.versions = mode, versions
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json["error"].startswith("not ready: ")


def _samples(client) -> dict:
    r = client.get("/metrics")
    assert r.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.get_data(as_text=True))
        for s in family.samples
    }


def test_metrics_count_requests_latency_instances_and_the_served_version(client, project, fake_serving):
    project.add_version(2, 98.5)
    fake_serving.versions = {2: "AVAILABLE"}
    client.post("/predict", json={"instances": [[1, 2], [3, 4], [5, 6]]})
    client.post("/predict", json={"instances": [[1, 2]]})
    client.post("/predict", json={"instances": "nope"})
    samples = _samples(client)
    ok = (("endpoint", "/predict"), ("method", "POST"), ("status", "200"))
    bad = (("endpoint", "/predict"), ("method", "POST"), ("status", "400"))
    assert samples[("modelops_frontend_requests_total", ok)] == 2
    assert samples[("modelops_frontend_requests_total", bad)] == 1
    assert samples[("modelops_frontend_request_duration_seconds_count", ok)] == 2
    assert samples[("modelops_frontend_instances_predicted_total", ())] == 4
    assert samples[("modelops_frontend_upstream_duration_seconds_count", (("operation", "predict"),))] == 2
    assert samples[("modelops_frontend_served_model_version", ())] == 2
    assert samples[("modelops_frontend_served_model_accuracy_ratio", ())] == pytest.approx(0.985)


def test_unknown_paths_share_one_label_so_scanners_cannot_explode_the_series(client):
    for path in ("/a", "/b", "/wp-login.php"):
        client.get(path)
    samples = _samples(client)
    unmatched = [k for k in samples if k[0] == "modelops_frontend_requests_total" and ("endpoint", "unmatched") in k[1]]
    assert len(unmatched) == 1 and samples[unmatched[0]] == 3


def test_an_error_page_that_fails_itself_falls_back_to_a_plain_page_and_is_counted(client, project):
    project.cfg.history_path.mkdir(parents=True)  # the page cannot read the history at all
    r = client.get("/", headers={"Accept": "text/html"})
    assert r.status_code == 500
    assert r.mimetype == "text/html"
    assert "internal error in the frontend" in r.get_data(as_text=True)
    failed = (("endpoint", "/"), ("method", "GET"), ("status", "500"))
    assert _samples(client)[("modelops_frontend_requests_total", failed)] == 1


def test_made_up_methods_share_one_label_so_clients_cannot_explode_the_series(client):
    for method in ("FOO", "BAR", "PROPFIND"):
        assert client.open("/predict", method=method).status_code == 405
    samples = _samples(client)
    counted = {k[1]: v for k, v in samples.items() if k[0] == "modelops_frontend_requests_total"}
    assert [dict(labels)["method"] for labels in counted] == ["other"] and sum(counted.values()) == 3


def test_openapi_documents_every_route_with_error_responses(app, client):
    doc = client.get("/openapi.json").json
    assert doc["openapi"].startswith("3.")
    routes = {r.rule for r in app.url_map.iter_rules() if r.endpoint != "static"}
    assert routes == set(doc["paths"])
    predict = doc["paths"]["/predict"]["post"]
    assert {"200", "400", "413", "502", "503", "504"} <= set(predict["responses"])
    schema = doc["components"]["schemas"]["PredictRequest"]["properties"]["instances"]
    assert schema["maxItems"] == app.config["MAX_INSTANCES"]


def test_openapi_refs_resolve_and_the_examples_match_the_schemas(client):
    jsonschema = pytest.importorskip("jsonschema")
    doc = client.get("/openapi.json").json
    schemas = doc["components"]["schemas"]

    def refs(node):
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(doc):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    registry_doc = {"components": doc["components"]}
    for media in doc["paths"]["/predict"]["post"]["requestBody"]["content"].values():
        schema = {**media["schema"], "components": registry_doc["components"]}
        jsonschema.validate(media["example"], schema)
    example = doc["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]["example"]
    jsonschema.validate(example, {**schemas["PredictResponse"]})


def test_bad_environment_value_names_the_variable(project, monkeypatch):
    from modelops.core.errors import ConfigError
    from modelops.web import create_app

    monkeypatch.setenv("MAX_INSTANCES", "lots")
    with pytest.raises(ConfigError, match="MAX_INSTANCES"):
        create_app({"MODELOPS_CONFIG": project.config_path})
