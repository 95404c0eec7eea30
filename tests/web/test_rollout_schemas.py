"""A staged rollout across a schema change: v1 (stable) takes the demo's x1, x2; v2 (the candidate)
takes penguins by name. Each request is checked against the schema of the version it is routed to."""

from __future__ import annotations

import json

import pytest

from modelops.core import history
from modelops.core.schema import DEMO_SCHEMA
from tests.web.conftest import SPECIES, FakeServing

PENGUIN_SCHEMA = {"features": {"island": {"type": "category", "values": ["Biscoe", "Dream", "Torgersen"]}},
                  "label": {"column": "species", "classes": list(SPECIES)}}
DEMO_ROW = {"instances": [[1.0, 2.0]]}
PENGUIN_ROW = {"instances": [{"island": "Dream"}]}


@pytest.fixture
def fake_serving():
    return FakeServing(versions={1: "AVAILABLE", 2: "AVAILABLE"})


def rollout(project, make_app, phase: str):
    """v1 stable, v2 the candidate in ``phase``: canary at 100 % (every user on v2) or shadow (every user on v1)."""
    raw = json.loads(project.config_path.read_text())
    raw["rollout"].update(mode=phase, **({"canary_percent": 100.0} if phase == "canary" else {}))
    project.config_path.write_text(json.dumps(raw))
    project.add_version(1, 98.0, schema=DEMO_SCHEMA.to_config())
    project.add_version(2, 98.5, schema=PENGUIN_SCHEMA)
    path = project.cfg.history_path
    history.append(path, "rollout-start", version=2, stable_version=1, phase="loading")
    history.append(path, "rollout-advance", version=2, stable_version=1, phase=phase)
    return make_app().test_client()


def test_requests_routed_to_the_candidate_are_checked_against_its_schema(project, make_app, fake_serving):
    client = rollout(project, make_app, "canary")
    answered = client.post("/predict", json=PENGUIN_ROW)
    assert answered.status_code == 200, answered.get_data(as_text=True)
    assert answered.headers["X-Model-Version"] == "2"
    assert answered.json["predictions"][0]["class"] == "Chinstrap"
    refused = client.post("/predict", json=DEMO_ROW)
    assert refused.status_code == 400 and "island" in refused.json["error"]
    assert fake_serving.instances == [[{"island": "Dream"}]], "nothing refused reached serving"


def test_requests_routed_to_the_stable_version_are_checked_against_its_schema(project, make_app, fake_serving):
    client = rollout(project, make_app, "shadow")
    answered = client.post("/predict", json=DEMO_ROW)
    assert answered.status_code == 200 and answered.headers["X-Model-Version"] == "1"
    refused = client.post("/predict", json=PENGUIN_ROW)
    assert refused.status_code == 400 and "island" in refused.json["error"]
