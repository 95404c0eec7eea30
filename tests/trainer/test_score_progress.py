"""The command's progress line: rows done, rows/s and, when the file's size is known, the share read
and the time left; it redraws at most 4 times a second."""

from __future__ import annotations

from modelops.trainer.score import Progress


def test_the_progress_line_says_rows_rate_and_time_left(capsys):
    progress = Progress(lambda: 0.25)
    progress.started -= 10  # ten seconds in, a quarter of the file read
    progress.show(50_000)
    progress.show(60_000)  # too soon after the last one: not drawn
    line = capsys.readouterr().err
    assert line.startswith("\r50,000 rows") and "rows/s" in line and "25%" in line and "30 s left" in line
    assert "60,000" not in line


def test_without_a_size_there_is_no_time_left(capsys):
    progress = Progress(None)
    progress.show(10)
    line = capsys.readouterr().err
    assert "10 rows" in line and "left" not in line
