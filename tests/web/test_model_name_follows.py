"""A running frontend follows config.json's model_name (issue 30: compose switched to penguins)."""

from __future__ import annotations

import json

from tests.web.conftest import MODEL


def _rename(project, name: str) -> None:
    """Replace config.json as an editor does: a new file renamed over the old one."""
    doc = json.loads(project.config_path.read_text())
    doc["model_name"] = name
    new = project.config_path.with_name("config.json.new")
    new.write_text(json.dumps(doc))
    new.replace(project.config_path)


def test_a_renamed_model_is_asked_for_without_a_restart(make_app, project, fake_serving):
    app = make_app(MODEL_NAME=None)  # compose passes MODEL_NAME through unset: config.json decides
    client = app.test_client()
    assert client.get("/readyz").get_json()["model_name"] == MODEL
    _rename(project, "penguins")
    app.extensions["model_name"].next = 0  # the next request looks (normally within 2 s)
    answer = client.get("/readyz")
    assert fake_serving.calls[-1] == ("GET", "/v1/models/penguins")  # serving is asked for the new name
    assert answer.status_code == 503 and "'penguins'" in answer.get_json()["error"]  # the fake has no penguins


def test_a_pinned_model_name_is_kept_and_the_change_logged(make_app, project, fake_serving, caplog):
    app = make_app()  # MODEL_NAME given: a config.json naming another model does not load
    client = app.test_client()
    _rename(project, "penguins")
    app.extensions["model_name"].next = 0
    assert client.get("/readyz").status_code == 200
    assert fake_serving.calls[-1] == ("GET", f"/v1/models/{MODEL}")
    assert "does not load" in caplog.text and "MODEL_NAME" in caplog.text
