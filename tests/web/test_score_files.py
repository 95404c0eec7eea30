"""A whole CSV through the frontend: ``POST /predict`` with a CSV body and the page's upload (``POST /score``),
against the fake serving; the real-serving run with the command is tests/trainer/test_score_command.py."""

from __future__ import annotations

import csv
import io
import json
import random

import pytest

from modelops.core import batch_score
from tests.web.conftest import probability

BROKEN = [["b1", "", "0.5"], ["b2", "abc", "1"], ["b3", "0.1", "0.2", "extra"], ["b4", "inf", "1"]]


def _csv(rows: list[list[str]], header=("id", "x1", "x2")) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([list(header), *rows])
    return out.getvalue().encode()


def _good_rows(n: int, seed: int = 7) -> list[list[str]]:
    rng = random.Random(seed)
    return [[f"r{i}", f"{rng.uniform(-3, 3):.4f}", f"{rng.uniform(-3, 3):.4f}"] for i in range(n)]


def _read(body: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body.decode())))


def test_a_csv_body_answers_every_row_in_order_with_bad_rows_marked(client):
    good = _good_rows(50)
    rows = good[:20] + BROKEN + good[20:]
    r = client.post("/predict", data=_csv(rows), content_type="text/csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert r.headers["X-Model-Version"] == "1" and r.headers["X-Rows"] == "54" and r.headers["X-Row-Errors"] == "4"
    out = _read(r.data)
    assert [row["id"] for row in out] == [row[0] for row in rows]  # every row, in input order, passed through
    assert list(out[0]) == ["id", "x1", "x2", *batch_score.answer_columns(client.application.config["MODELOPS"]
                                                                             .schema)]
    for row in out:
        assert row["model_version"] == "1"
        if row["id"].startswith("r"):
            p = probability(float(row["x1"]), float(row["x2"]))
            assert float(row["probability_1"]) == pytest.approx(p) and row["class"] == str(int(p >= 0.5))
            assert row["error"] == ""
    errors = {row["id"]: row["error"] for row in out if row["error"]}
    assert set(errors) == {"b1", "b2", "b3", "b4"}
    assert "x1" in errors["b1"] and "missing" in errors["b1"]
    assert "x1" in errors["b2"] and "'abc'" in errors["b2"]
    assert "4 values" in errors["b3"] and "3 columns" in errors["b3"]
    assert "x1" in errors["b4"] and "finite" in errors["b4"]
    assert all(out[i]["class"] == "" for i in range(20, 24))


def test_csv_json_and_the_upload_give_the_same_answers_as_json_predict(client):
    rows = _good_rows(30)
    body = _csv(rows[:10] + BROKEN[:1] + rows[10:])
    as_csv = client.post("/predict", data=body, content_type="text/csv")
    as_json = client.post("/predict", data=body, content_type="text/csv", headers={"Accept": "application/json"})
    upload = client.post("/score", data={"file": (io.BytesIO(body), "week 49.csv")},
                         content_type="multipart/form-data")
    plain = client.post("/predict", json={"instances": [[float(r[1]), float(r[2])] for r in rows]})
    assert as_csv.status_code == as_json.status_code == upload.status_code == plain.status_code == 200
    assert upload.data == as_csv.data
    assert upload.headers["Content-Disposition"] == 'attachment; filename="week_49.scored.csv"'
    document = as_json.get_json()
    assert document["model_version"] == 1 and document["rows"] == 31
    assert document["errors"] == [{"row": 11, "error": _read(as_csv.data)[10]["error"]}]
    scored = [p for p in document["predictions"] if p is not None]
    assert scored == plain.get_json()["predictions"]
    assert [float(r["probability_1"]) for r in _read(as_csv.data) if not r["error"]] == [p[0] for p in scored]


def test_a_big_file_goes_to_serving_in_chunks(client, fake_serving):
    rows = _good_rows(2 * batch_score.CHUNK_ROWS + 5)
    r = client.post("/predict", data=_csv(rows), content_type="text/csv")
    assert r.status_code == 200 and len(_read(r.data)) == len(rows)
    sizes = [len(chunk) for chunk in fake_serving.instances]
    assert sizes == [batch_score.CHUNK_ROWS, batch_score.CHUNK_ROWS, 5]


def test_a_body_over_the_upload_limit_is_refused_naming_the_setting(project, make_app):
    config = json.loads(project.config_path.read_text())
    config["score"] = {"max_upload_mb": 0.01}
    project.config_path.write_text(json.dumps(config))
    client = make_app().test_client()
    big = _csv(_good_rows(1000))
    for r in (client.post("/predict", data=big, content_type="text/csv"),
              client.post("/score", data={"file": (io.BytesIO(big), "big.csv")}, content_type="multipart/form-data")):
        assert r.status_code == 413
        assert "score.max_upload_mb" in r.get_json()["error"] and "retrain_pipeline.py score" in r.get_json()["error"]
    assert client.post("/predict", data=_csv(_good_rows(5)), content_type="text/csv").status_code == 200


@pytest.mark.parametrize(("body", "words"), [
    (b"a,b\n1,2\n", ["'x1'", "'x2'"]),
    (b"", ["empty"]),
    (b"x1,x2\n\xff\xfe,1\n", ["UTF-8"]),
])
def test_an_unreadable_csv_is_a_400_saying_why(client, body, words):
    r = client.post("/predict", data=body, content_type="text/csv")
    assert r.status_code == 400
    assert all(word in r.get_json()["error"] for word in words)


def test_no_file_chosen_and_an_unknown_version_are_400s(client):
    assert "choose a CSV file" in client.post("/score", data={}, content_type="multipart/form-data").get_json()["error"]
    r = client.post("/predict?version=7", data=_csv(_good_rows(2)), content_type="text/csv")
    assert r.status_code == 400 and "version 7" in r.get_json()["error"]


def test_serving_down_is_a_503(client, fake_serving):
    fake_serving.mode = "down"
    r = client.post("/predict", data=_csv(_good_rows(3)), content_type="text/csv")
    error = r.get_json()["error"]
    assert r.status_code == 503 and "TF Serving is unavailable" in error and "request id" in error
    assert "tfserving.test" not in error  # where serving is stays in the log


def test_during_a_canary_a_file_is_scored_by_the_stable_version(project, make_app, fake_serving):
    fake_serving.versions = {1: "AVAILABLE", 2: "AVAILABLE"}
    project.add_version(1, 98.0)
    project.add_version(2, 98.5)
    project.record("rollout-start", 2, 98.5, stable_version=1, phase="canary")
    client = make_app(MODELOPS_CONFIG=project.config_path).test_client()
    r = client.post("/predict", data=_csv(_good_rows(50)), content_type="text/csv")
    assert r.headers["X-Model-Version"] == "1"
    assert {row["model_version"] for row in _read(r.data)} == {"1"}
    assert all(path.endswith("/versions/1:predict") for method, path in fake_serving.calls if method == "POST")


def test_the_page_offers_the_upload_with_its_limit(client):
    page = client.get("/").get_data(as_text=True)
    assert 'action="/score"' in page and 'enctype="multipart/form-data"' in page and "Up to 20 MB" in page


def test_openapi_documents_the_csv_body_and_the_upload(client):
    doc = client.get("/openapi.json").get_json()
    post = doc["paths"]["/predict"]["post"]
    assert "20 MB" in post["requestBody"]["content"]["text/csv"]["description"]
    assert "model_version" in post["responses"]["200"]["content"]["text/csv"]["schema"]["description"]
    assert "file" in doc["paths"]["/score"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"][
        "properties"]


@pytest.mark.parametrize("damage", ["{not json", '{"schema": {"features": {"x1": {"type": "blob"}}, "label": 1}}'])
def test_a_damaged_record_of_the_version_is_the_same_503_as_json_predict(project, make_app, damage):
    project.add_version(1, 98.0)
    (project.cfg.models_dir / "1" / "metrics.json").write_text(damage)
    client = make_app(MODELOPS_CONFIG=project.config_path).test_client()
    as_csv = client.post("/predict", data=_csv(_good_rows(3)), content_type="text/csv")
    plain = client.post("/predict", json={"instances": [[0.1, 0.2]]})
    assert as_csv.status_code == plain.status_code == 503
    csv_error, json_error = as_csv.get_json()["error"], plain.get_json()["error"]
    assert "version 1's metrics.json" in csv_error and "retrain, or roll back" in csv_error
    assert csv_error.split(" (request id")[0] == json_error.split(" (request id")[0]  # never config.json's guess
