"""Data batches: validation, quarantine with reasons, deterministic split, bootstrap."""

import numpy as np
import pytest

from modelops import data
from modelops.config import DataConfig
from modelops.errors import DataError

LIMITS = DataConfig()
GOOD = b"x1,x2,label\n1.5,2.3,1\n0.8,-1.2,0\n"


def test_good_batch_parses_in_any_column_order():
    x, y = data.parse_batch(b"label,x2,x1\n1,2.3,1.5\n", LIMITS)
    assert x.tolist() == [[1.5, pytest.approx(2.3)]]
    assert y.tolist() == [1.0]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"x1,x2,label\n1.5,abc,1\n", "line 2: x2 is not a number: 'abc'"),
        (b"x1,x2,label\nnan,1,1\n", "line 2: x1 must be finite"),
        (b"x1,x2,label\n1,inf,0\n", "x2 must be finite"),
        (b"x1,x2,label\n1,1,2\n", "label must be 0 or 1, got '2'"),
        (b"x1,label\n1,1\n", "header must be the columns x1,x2,label"),
        (b"", "empty file"),
        (b"x1,x2,label\n", "0 data rows"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "binary"),
        (b"x1,x2,label\n1,2\n", "expected 3 fields, got 2"),
        (b"x1,x2,label\n1e9,2,1\n", "outside [-1000.0, 1000.0]"),
    ],
)
def test_bad_batches_say_what_is_wrong(content, reason):
    with pytest.raises(DataError) as err:
        data.parse_batch(content, LIMITS)
    assert reason in str(err.value)


def test_many_bad_rows_are_summarised():
    rows = b"".join(b"1,x,1\n" for _ in range(20))
    with pytest.raises(DataError, match=r"line 6: .*\(and 15 more\)"):
        data.parse_batch(b"x1,x2,label\n" + rows, LIMITS)


def test_ingest_quarantines_bad_batches_and_keeps_good_ones(project):
    inbox = data.incoming_dir(project)
    inbox.mkdir(parents=True)
    (inbox / "good.csv").write_bytes(GOOD)
    (inbox / "labels.csv").write_bytes(b"x1,x2,label\n1,1,2\n")
    (inbox / "junk.csv").write_bytes(bytes(range(256)))
    (inbox / "notes.txt").write_text("hello")
    report = data.ingest(project)
    assert report.accepted == ("good.csv",)
    assert report.rows_accepted == 2
    assert {name for name, _ in report.quarantined} == {"labels.csv", "junk.csv", "notes.txt"}
    quarantine = data.quarantine_dir(project)
    assert "label must be 0 or 1" in (quarantine / "labels.csv.reason.txt").read_text()
    assert (quarantine / "junk.csv").read_bytes() == bytes(range(256)), "quarantine keeps the original bytes"
    assert not list(inbox.iterdir())
    assert not report.bootstrapped, "good data exists, so no synthetic bootstrap"
    assert data.load_dataset(project).files == ("good.csv",)


def test_a_batch_with_the_same_name_never_overwrites_an_accepted_one(project):
    inbox = data.incoming_dir(project)
    for content in (GOOD, b"x1,x2,label\n9,9,1\n"):
        inbox.mkdir(parents=True, exist_ok=True)
        (inbox / "weekly.csv").write_bytes(content)
        data.ingest(project)
    assert len(data.load_dataset(project)) == 3


def test_no_data_at_all_bootstraps_a_seeded_synthetic_set(project):
    report = data.ingest(project)
    assert report.bootstrapped
    first = data.load_dataset(project)
    assert len(first) == project.data.bootstrap_rows
    assert 0.3 < first.y.mean() < 0.7


def test_split_is_deterministic_per_row_whatever_else_is_in_the_dataset():
    x, y = data.synthetic(1000, seed=1)
    small = data.Dataset(x[:500], y[:500], "a", ())
    large = data.Dataset(x, y, "b", ())
    eval_small = {tuple(r) for r in data.split(small, 20).x_eval.tolist()}
    eval_large = {tuple(r) for r in data.split(large, 20).x_eval.tolist()}
    assert eval_small <= eval_large, "adding rows never moves an old row to the other side"
    assert 0.14 < len(eval_large) / 1000 < 0.26


def test_fingerprint_changes_with_the_data(project):
    data.ingest(project)
    before = data.load_dataset(project).fingerprint
    data.simulate(project, rows=10, noise=0.0, shift=0.0, seed=3)
    data.ingest(project)
    assert data.load_dataset(project).fingerprint != before


def test_simulated_noise_flips_labels():
    x, clean = data.synthetic(2000, seed=5)
    _, noisy = data.synthetic(2000, seed=5, noise=0.3)
    truth = (x[:, 0] + x[:, 1] > data.BOUNDARY).astype(np.float32)
    assert (clean == truth).mean() > 0.98
    assert (noisy == truth).mean() < 0.75
