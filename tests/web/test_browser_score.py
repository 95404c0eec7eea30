"""A real headless Chromium uploads a CSV on the page: the summary shows, the scored file downloads."""

from __future__ import annotations

import pytest

from harness.processes import frontend
from tests.web.conftest import MODEL, probability
from tests.web.test_browser import browser  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_upload_a_csv_and_get_the_summary_and_the_scored_file(browser, fake_upstream, project, tmp_path):  # noqa: F811
    rows = "id,x1,x2\nr1,0.5,0.25\nr2,abc,1\nr3,-2,-1\n"
    (tmp_path / "week.csv").write_text(rows)
    with frontend(fake_upstream, MODEL, project.config_path, tmp_path, workers=1) as url:
        page = browser.new_page()
        page.goto(url + "/")
        page.set_input_files("#score-file", str(tmp_path / "week.csv"))
        with page.expect_download() as download:
            page.click("#score-form button[type=submit]")
            page.click("#score-download")
        counts = page.text_content("#score-counts")
        errors = page.text_content("#score-errors")
        scored = download.value.path().read_text()
    assert counts == "3 rows, 1 with errors, answered by version 1."
    assert errors == "row 2: x1 is not a number: 'abc'; send a number"
    lines = scored.splitlines()
    assert lines[0] == "id,x1,x2,class,probability_0,probability_1,model_version,error"
    assert [line.split(",")[0] for line in lines[1:]] == ["r1", "r2", "r3"]
    assert float(lines[1].split(",")[5]) == pytest.approx(probability(0.5, 0.25))  # probability_1
    assert download.value.suggested_filename == "week.scored.csv"
