"""The model page, as a user sees it: fresh clone, TF Serving down, a real history."""

from __future__ import annotations

import re

from tests.web.conftest import GATE_EVIDENCE, LINEAGE


def test_fresh_clone_with_serving_down_still_renders_the_form(client, fake_serving, caplog):
    fake_serving.mode = "down"
    r = client.get("/")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert '<form method="post" action="/predict"' in page
    assert '<label for="x1">x1</label>' in page and '<label for="x2">x2</label>' in page
    assert "TF Serving not ready" in page
    assert "TF Serving is unavailable" in page and "tfserving.test" not in page
    assert "tfserving.test:8501 is not reachable" in caplog.text  # the detail is in the log
    assert "No model yet" in page
    assert "No decisions recorded yet" in page
    assert "No model versions yet" in page  # the empty chart says why it is empty


def test_serving_up_but_no_model_loaded_says_so(client, fake_serving):
    fake_serving.versions = {}
    page = client.get("/").get_data(as_text=True)
    assert "no model &#39;simple_classifier&#39; loaded" in page


def _history(project):
    project.add_version(1, 97.6, promoted_at="2025-11-02T02:00:07Z")
    project.record("promote", 1, 97.6, reasons=["first model: 97.60% >= 97.0%"], time="2025-11-02T02:00:07Z")
    project.record("reject", 2, 91.25, reasons=["accuracy 91.25% < 97.0% threshold"])
    project.add_version(3, 98.4, promoted_at="2025-11-16T02:00:09Z")
    project.record("promote", 3, 98.4, reasons=["98.40% >= 97.0%, champion v1 97.60%"])
    project.record("rollback", 3, None, to_version=1, reasons=["verification failed"])


def test_page_shows_served_version_accuracy_promotion_time_chart_and_decisions(client, project, fake_serving):
    _history(project)
    fake_serving.versions = {3: "AVAILABLE", 1: "END"}
    page = client.get("/").get_data(as_text=True)
    assert "Serving version 3" in page
    assert "98.40%" in page
    assert '<time datetime="2025-11-16T02:00:09Z">2025-11-16 02:00 UTC</time>' in page

    svg = re.search(r"<svg class=\"chart\".*?</svg>", page, re.S).group(0)
    assert 'class="threshold"' in svg and "gate 97%" in svg
    assert '<g class="point rejected"><title>v2: 91.25% (rejected by the gate)</title>' in svg
    assert "<title>v3: 98.40% (served now)</title>" in svg
    assert "<title>v1: 97.60% (promoted)</title>" in svg

    decisions = page[page.index("Recent gate decisions") :]
    rows = re.findall(r'<tr class="event-([\w-]+)">', decisions)
    assert rows == ["rollback", "promote", "reject", "promote"]  # newest first
    assert "accuracy 91.25% &lt; 97.0% threshold" in decisions
    assert "v3 → v1" in decisions


def test_serving_down_shows_the_latest_published_version_from_disk(client, project, fake_serving):
    _history(project)
    fake_serving.mode = "timeout"
    page = client.get("/").get_data(as_text=True)
    assert "Latest published: version 3" in page
    assert "did not answer" in page


def test_a_corrupt_metrics_file_or_history_line_does_not_break_the_page(client, project):
    project.add_version(1, 97.5)
    (project.cfg.models_dir / "1" / "metrics.json").write_text("{not json")
    project.cfg.history_path.parent.mkdir()
    project.cfg.history_path.write_text('{"event": "promote", "version": 1}\nnot json\n[1, 2]\n')
    r = client.get("/")
    assert r.status_code == 200
    assert "unknown" in r.get_data(as_text=True)


def test_unknown_path_from_a_browser_gets_the_page_with_a_404_message(client):
    r = client.get("/nowhere", headers={"Accept": "text/html"})
    assert r.status_code == 404
    assert "nothing at /nowhere" in r.get_data(as_text=True)


def test_stylesheet_is_served_locally(client):
    page = client.get("/").get_data(as_text=True)
    assert "http" not in re.search(r'<link rel="stylesheet" href="([^"]+)"', page).group(1)
    assert client.get("/static/style.css").status_code == 200


COMPARISON = {
    "a": {"version": 3, "spec": "served", "accuracy_percent": 98.4, "latency_ms": None},
    "b": {"version": 1, "spec": "previous", "accuracy_percent": 97.6, "latency_ms": None},
    "rows": 400, "source": "400 held-out rows of the current dataset", "labelled": True,
    "class_agreement": 0.9925, "mean_abs_diff": 0.0123, "max_abs_diff": 0.4567,
    "disagree_most": [{"row": 17, "x": [0.48, 0.531], "label": 1, "a": 0.621, "b": 0.408, "abs_diff": 0.213}],
    "computed_at": "2025-11-16T02:00:12Z",
}


def test_the_served_version_links_its_comparison_with_the_previous_one(client, project, fake_serving):
    project.add_version(1, 97.6)
    project.add_version(3, 98.4, comparison=COMPARISON)
    fake_serving.versions = {3: "AVAILABLE"}
    page = client.get("/").get_data(as_text=True)
    assert '<a href="#comparison">99.25% same class, mean |Δp| 0.0123</a>' in page
    section = " ".join(page[page.index('id="comparison"'):].split())
    assert "Version 3 compared with version 1" in section
    assert "by 0.0123 on average and 0.4567 at most" in section
    assert "Accuracy: version 3 98.40%, version 1 97.60%." in section
    assert "<td>17</td><td>0.4800</td><td>0.5310</td><td>1</td>" in section


def test_a_damaged_stored_comparison_is_left_out_not_a_500(client, project, fake_serving):
    project.add_version(3, 98.4, comparison={**COMPARISON, "class_agreement": "most"})
    fake_serving.versions = {3: "AVAILABLE"}
    r = client.get("/")
    assert r.status_code == 200
    assert 'id="comparison"' not in r.get_data(as_text=True)
    project.add_version(4, 98.4, comparison=COMPARISON)  # stored with v3: not v4's comparison
    fake_serving.versions = {4: "AVAILABLE"}
    assert 'id="comparison"' not in client.get("/").get_data(as_text=True)


def test_a_non_utf8_byte_in_the_history_is_skipped_and_reported_on_the_page(client, project):
    project.add_version(1, 97.6)
    project.record("promote", 1, 97.6, reasons=["first model: 97.60% >= 97.0%"])
    with open(project.cfg.history_path, "ab") as fh:
        fh.write(b'{"event": "reject", "reasons": ["caf\xe9"]}\n')  # Latin-1, not UTF-8
    project.record("reject", 2, 91.25, reasons=["accuracy 91.25% < 97.0% threshold"])
    r = client.get("/")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "first model: 97.60% &gt;= 97.0%" in page and "accuracy 91.25% &lt; 97.0% threshold" in page
    assert "1 damaged line(s) in runs/history.jsonl were skipped" in page


def test_the_served_version_shows_its_gate_evidence_slices_and_lineage(client, project, fake_serving):
    project.add_version(1, 98.75)
    project.add_version(2, 97.5, gate=GATE_EVIDENCE, lineage=LINEAGE)
    fake_serving.versions = {2: "AVAILABLE"}
    page = client.get("/").get_data(as_text=True)
    text = " ".join(page.split())
    assert "-1.25 points vs the champion (95% CI [-2.65, +0.16], p=0.109, significance 0.05" in text
    assert "only the candidate right on 2, only the champion on 8 of 480 rows" in text
    assert '<a href="#evidence">-1.25 points vs the champion, p=0.109</a>' in text
    assert ("<tr><td>x1 &lt; 0</td><td>30</td><td>90.00%</td><td>100.00%</td> <td>0.25</td>"
            "<td>not judged (fewer than gate.min_slice_rows=50 rows)</td></tr>") in text
    assert "<td>x1 &gt;= 0</td><td>450</td><td>98.00%</td><td>98.67%</td>" in text
    assert "damaged" not in text, "a damaged slice row is left out, the rest still shows"
    assert "<dt>Code</dt><dd>git 0123456789 (dirty)</dd>" in text
    assert "Python 3.11.2, TensorFlow 2.21.0, Keras 3.12.0, NumPy 2.3.4" in text
    assert "fingerprint 6faa25d79afbb61c of bootstrap.csv, sim-1.csv" in text
    assert "<dt>Parent</dt><dd>version 1</dd>" in text
    assert "reproduce 2" in text


def test_a_version_without_evidence_or_lineage_shows_no_such_section(client, project, fake_serving):
    project.add_version(1, 97.6)
    fake_serving.versions = {1: "AVAILABLE"}
    page = client.get("/").get_data(as_text=True)
    assert 'id="evidence"' not in page and "Gate evidence" not in page
