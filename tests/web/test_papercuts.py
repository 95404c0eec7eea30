"""Issue 29's papercuts as a user of the frontend meets them: the class probabilities come back in
``label.classes`` order (not alphabetical), and the page names the gate's metric for what it is."""

from __future__ import annotations

import json

from tests.web.conftest import SPECIES

CLASSES = ["Gentoo", "Chinstrap", "Adelie"]  # deliberately not alphabetical


def test_probabilities_come_back_in_label_classes_order(project, make_app):
    config = json.loads(project.config_path.read_text())
    config.update(features={"island": {"type": "category", "values": ["Biscoe", "Dream", "Torgersen"]}},
                  label={"column": "species", "classes": CLASSES})
    project.config_path.write_text(json.dumps(config))
    client = make_app().test_client()
    r = client.post("/predict", json={"instances": [{"island": "Dream"}]})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert list(json.loads(r.get_data())["predictions"][0]["probabilities"]) == CLASSES  # the body's own order
    assert set(CLASSES) == set(SPECIES)


def test_the_page_names_the_gates_metric_and_shows_accuracy_as_accuracy(project, make_app):
    project.add_version(1, 65.97, gate={"promote": True, "reasons": ["first model"], "threshold_percent": 60.0,
                                        "metric": "balanced_accuracy"},
                        scores_percent={"accuracy": 71.64, "balanced_accuracy": 65.97, "macro_f1": 64.0})
    page = make_app().test_client().get("/").get_data(as_text=True)
    assert "Balanced accuracy (test)" in page and "65.97%" in page
    assert "Accuracy (test)" in page and "71.64%" in page
    assert "Test accuracy</dt>" not in page


def test_a_version_gated_on_accuracy_shows_one_accuracy(project, make_app):
    project.add_version(1, 98.5)
    page = make_app().test_client().get("/").get_data(as_text=True)
    assert "Accuracy (test)" in page and "98.50%" in page and "Balanced accuracy" not in page
