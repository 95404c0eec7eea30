"""A real headless Chromium loads the page from gunicorn, submits the form, sees the prediction.

Screenshots go to ``test-artifacts/`` (git-ignored) for a human to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright import sync_api

from harness.processes import frontend
from tests.web.conftest import GATE_EVIDENCE, LINEAGE, MODEL, REPO, probability

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture
def browser():
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is not installed: scripts/setup.sh installs it (Debian chromium)"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _history(project):
    project.add_version(1, 97.4, promoted_at="2025-10-26T02:00:05Z")
    project.record("promote", 1, 97.4, reasons=["first model: 97.40% >= 97.0% threshold"])
    project.record(
        "reject",
        2,
        93.1,
        champion_version=1,
        champion_accuracy_percent=97.4,
        reasons=["accuracy 93.10% is below the 97.0% threshold"],
    )
    project.add_version(3, 98.2, promoted_at="2025-11-09T02:00:11Z", champion={"version": 1, "accuracy_percent": 97.4})
    project.record(
        "promote",
        3,
        98.2,
        champion_version=1,
        champion_accuracy_percent=97.4,
        reasons=["98.20% >= 97.0% threshold; not worse than champion v1 (97.40%)"],
    )
    project.record(
        "reject",
        4,
        97.9,
        champion_version=3,
        champion_accuracy_percent=98.2,
        reasons=["only 60 eval rows; at least 100 are needed to decide"],
    )
    project.add_version(5, 98.9, promoted_at="2025-11-23T02:00:09Z", champion={"version": 3, "accuracy_percent": 98.2},
                        gate=GATE_EVIDENCE, lineage=LINEAGE)
    project.record(
        "promote",
        5,
        98.9,
        champion_version=3,
        champion_accuracy_percent=98.2,
        reasons=["98.90% >= 97.0% threshold; not worse than champion v3 (98.20%)"],
    )


def test_submit_the_form_and_see_the_prediction(browser, fake_upstream, fake_serving, project, tmp_path):
    _history(project)
    fake_serving.versions = {5: "AVAILABLE", 3: "END", 1: "END"}
    ARTIFACTS.mkdir(exist_ok=True)
    with frontend(fake_upstream, MODEL, project.config_path, tmp_path, workers=1) as url:
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        refused = []  # what the Content-Security-Policy blocked (issue 33: the page must work under it)
        page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text
                else None)
        page.goto(url + "/")
        assert page.evaluate("document.styleSheets[0].cssRules.length") > 0  # the stylesheet loaded
        assert page.get_by_role("heading", name="Served model: version 5").is_visible()
        assert page.locator("svg.chart .point.rejected").count() == 2
        assert page.get_by_role("table").filter(has_text="Slices of the eval rows").is_visible()
        page.get_by_label("x1", exact=True).fill("0.8")
        page.get_by_label("x2", exact=True).fill("-1.2")
        page.get_by_label("x2", exact=True).press("Enter")  # keyboard submit
        page.wait_for_selector("#probability")
        assert page.locator("#probability").inner_text() == f"{probability(0.8, -1.2):.4f}"
        assert page.locator("#predicted-class").inner_text() == "0"
        assert page.locator("#answered-by").inner_text() == "5"
        bar, track = (page.locator(f".meter {part}").first.bounding_box()["width"] for part in ("rect", ""))
        assert bar == pytest.approx(track * probability(0.8, -1.2), abs=2)  # the meter shows the probability
        assert refused == []
        page.screenshot(path=str(ARTIFACTS / "frontend-desktop.png"), full_page=True)

        page.get_by_label("x1", exact=True).fill("twelve")
        page.get_by_role("button", name="Predict").click()
        page.wait_for_selector("[role=alert]")
        assert "x1 must be a number" in page.get_by_role("alert").inner_text()

        phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
        phone.goto(url + "/")
        assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll
        phone.screenshot(path=str(ARTIFACTS / "frontend-phone.png"), full_page=True)
