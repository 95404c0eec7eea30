"""The model page shows what the served version relies on, beside the champion it replaced."""

from __future__ import annotations

import re

from modelops.core import importance


def test_the_page_shows_the_served_versions_importance_beside_the_previous_one(client, project, fake_serving):
    project.add_version(1, 97.5, explanations={"steps": 128, **importance.record({"x1": 0.3, "x2": 0.1})})
    project.add_version(2, 98.0, champion={"version": 1, "accuracy_percent": 97.5},
                        explanations={"steps": 128, **importance.record({"x1": 0.1, "x2": 0.3})})
    fake_serving.versions = {2: "AVAILABLE"}
    page = client.get("/").get_data(as_text=True)
    card = page[page.index('id="importance"'):]
    card = card[:card.index("</section>")]
    assert "What version 2 relies on" in card and "version 1, the champion it replaced" in card
    rows = re.findall(r'<th scope="row">(\w+)</th>.*?(\d+)%.*?(\d+)%', card, re.S)
    assert rows == [("x2", "75", "25"), ("x1", "25", "75")]  # largest share first, then the champion's


def test_a_version_recorded_before_explanations_shows_no_importance(client, project, fake_serving):
    project.add_version(1, 97.5)
    assert 'id="importance"' not in client.get("/").get_data(as_text=True)
