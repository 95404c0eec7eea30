"""Data batches: validation, quarantine with reasons, hand-off, window, de-duplication, keyed split."""

import dataclasses
import io
import os
import stat
import threading
import time

import numpy as np
import pytest

from harness.project import write_config
from modelops.core.config import DataConfig, WindowConfig, load_config
from modelops.core.errors import DataError, UsageError
from modelops.core.schema import Schema
from modelops.trainer.data import dataset as data

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


def test_a_bootstrap_batch_over_the_ingest_limits_still_trains(project):
    """The limits guard incoming files; the trainer's own bootstrap batch must not fail every run."""
    small = dataclasses.replace(project.data, max_batch_bytes=4096, max_batch_rows=1000)
    config = dataclasses.replace(project, data=small)
    data.ingest(config)
    assert (data.accepted_dir(config) / "bootstrap.csv").stat().st_size > small.max_batch_bytes
    assert len(data.load_dataset(config)) == project.data.bootstrap_rows


def test_split_is_deterministic_per_row_whatever_else_is_in_the_dataset():
    x, y = data.synthetic(1000, seed=1)
    small = data.Dataset(x[:500], y[:500], "a", ())
    large = data.Dataset(x, y, "b", ())
    key = bytes(32)
    eval_small = {tuple(r) for r in data.split(small, 20, key).x_eval.tolist()}
    eval_large = {tuple(r) for r in data.split(large, 20, key).x_eval.tolist()}
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


# --- ingest never blocks: whatever is in incoming/, it is accepted, set aside or left for later ---

def _inbox(config):
    inbox = data.incoming_dir(config)
    inbox.mkdir(parents=True, exist_ok=True)
    return inbox


def _reason(config, name):
    return (data.quarantine_dir(config) / f"{name}.reason.txt").read_text()


def test_a_stray_quote_before_20000_good_rows_quarantines_that_batch_only(project):
    inbox = _inbox(project)
    (inbox / "a-stray-quote.csv").write_bytes(b'x1,x2,label\n0.1,"0.2,1\n' + b"0.5,0.7,1\n" * 20_000)
    (inbox / "b-good.csv").write_bytes(GOOD)
    report = data.ingest(project)
    assert report.accepted == ("b-good.csv",)
    [(name, reason)] = report.quarantined
    assert name == "a-stray-quote.csv"
    assert "line 2" in reason and '"' in reason, "names the line and the stray quote"
    assert "line 2" in _reason(project, name) and "data/incoming/" in _reason(project, name), "says how to retry"
    assert data.load_dataset(project).files == ("b-good.csv",)


def test_an_unclosed_quote_in_a_small_file_names_the_lines_it_swallows(project):
    (_inbox(project) / "b.csv").write_bytes(b'x1,x2,label\n0.1,0.2,1\n0.1,"0.2,1\n0.3,0.4,0\n')
    [(_, reason)] = data.ingest(project).quarantined
    assert "line 3" in reason and "quoted field" in reason


def test_a_bad_byte_mid_file_names_its_line(project):
    (_inbox(project) / "latin1.csv").write_bytes(b"x1,x2,label\n1,2,1\n0.5,0.5,0 # caf\xe9\n")
    [(_, reason)] = data.ingest(project).quarantined
    assert "line 3: not UTF-8" in reason


def test_a_batch_over_the_byte_cap_is_set_aside_unread(tmp_path):
    from harness.project import write_config
    from modelops.core.config import load_config

    config = load_config(write_config(tmp_path, data={"max_batch_bytes": 1000, "settle_seconds": 0}))
    inbox = _inbox(config)
    with (inbox / "huge.csv").open("wb") as fh:
        fh.truncate(10**12)  # a sparse terabyte: reading it would never finish
    (inbox / "small.csv").write_bytes(GOOD)
    report = data.ingest(config)
    assert report.accepted == ("small.csv",)
    [(name, reason)] = report.quarantined
    assert name == "huge.csv" and "data.max_batch_bytes (1000)" in reason and str(10**12) in reason


def test_an_unreadable_batch_is_quarantined_with_what_to_do(project, monkeypatch):
    inbox = _inbox(project)
    (inbox / "locked.csv").write_bytes(GOOD)
    (inbox / "ok.csv").write_bytes(GOOD)
    real_open = os.open

    def deny(path, *args, **kwargs):  # as root, chmod 000 would not stop the read
        if os.fspath(path).endswith("locked.csv"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    report = data.ingest(project)
    assert report.accepted == ("ok.csv",)
    [(name, reason)] = report.quarantined
    assert name == "locked.csv" and "Permission denied" in reason and "readable" in reason


def test_links_pipes_and_directories_are_set_aside_never_followed(project, tmp_path):
    inbox = _inbox(project)
    outside = tmp_path / "outside.csv"
    outside.write_bytes(GOOD)
    (inbox / "link.csv").symlink_to(outside)
    (inbox / "dangling.csv").symlink_to(tmp_path / "gone.csv")
    os.mkfifo(inbox / "pipe.csv")  # opening it would block the run until a writer comes
    (inbox / "folder.csv").mkdir()
    (inbox / "good.csv").write_bytes(GOOD)
    report = data.ingest(project)
    assert report.accepted == ("good.csv",)
    reasons = dict(report.quarantined)
    assert set(reasons) == {"link.csv", "dangling.csv", "pipe.csv", "folder.csv"}
    assert "symbolic link" in reasons["link.csv"] and "symbolic link" in reasons["dangling.csv"]
    assert "FIFO" in reasons["pipe.csv"] and "directory" in reasons["folder.csv"]
    quarantine = data.quarantine_dir(project)
    assert (quarantine / "link.csv").is_symlink() and outside.read_bytes() == GOOD, "the link moved, not its target"
    assert stat.S_ISFIFO(os.lstat(quarantine / "pipe.csv").st_mode)
    assert not list(inbox.iterdir())


def test_hand_off_names_are_ignored_until_renamed(project):
    inbox = _inbox(project)
    (inbox / "week.csv.partial").write_bytes(GOOD)
    (inbox / ".week2.csv.tmp").write_bytes(GOOD)
    report = data.ingest(project)
    assert (report.accepted, report.quarantined) == ((), ())
    assert sorted(p.name for p in inbox.iterdir()) == [".week2.csv.tmp", "week.csv.partial"]
    os.replace(inbox / "week.csv.partial", inbox / "week.csv")
    assert data.ingest(project).accepted == ("week.csv",)


def _settling(project, seconds):
    return dataclasses.replace(project, data=dataclasses.replace(project.data, settle_seconds=seconds))


def test_a_file_still_being_copied_is_left_for_the_next_run(project):
    config = _settling(project, 1.0)
    inbox = _inbox(config)
    growing = inbox / "copying.csv"
    growing.write_bytes(b"x1,x2,label\n")
    (inbox / "old.csv").write_bytes(GOOD)
    os.utime(inbox / "old.csv", (time.time() - 3600, time.time() - 3600))
    done = threading.Event()

    def copy():  # a slow copy: a row every 10 ms until ingest has looked
        with growing.open("ab") as fh:
            while not done.is_set():
                fh.write(b"0.5,0.5,0\n")
                fh.flush()
                done.wait(0.01)

    writer = threading.Thread(target=copy)
    writer.start()
    try:
        report = data.ingest(config)
    finally:
        done.set()
        writer.join()
    assert report.accepted == ("old.csv",) and report.waiting == ("copying.csv",)
    assert report.quarantined == (), "a half-copied file is not judged"
    assert growing.exists()
    os.utime(growing, (time.time() - 3600, time.time() - 3600))  # the copy finished long ago
    assert data.ingest(config).accepted == ("copying.csv",)


def test_a_settled_file_is_judged_at_once(project):
    config = _settling(project, 3600.0)
    inbox = _inbox(config)
    (inbox / "old.csv").write_bytes(GOOD)
    os.utime(inbox / "old.csv", (time.time() - 7200, time.time() - 7200))
    assert data.ingest(config).accepted == ("old.csv",)


# --- bounded training data: window, de-duplication, keyed split ---

def _accept(config, name, x, y, age_hours=0.0):
    """Accept one batch now, then date its acceptance ``age_hours`` back."""
    data.write_batch(_inbox(config) / name, x, y)
    assert data.ingest(config).accepted == (name,)
    accepted = data.accepted_dir(config) / name
    when = time.time() - age_hours * 3600
    os.utime(accepted, (when, when))


def _windowed(config, **window):
    return dataclasses.replace(config, data=dataclasses.replace(config.data, window=WindowConfig(**window)))


def test_the_default_window_keeps_all_of_a_small_dataset(project):
    data.ingest(project)  # bootstrap
    for i in range(3):
        data.simulate(project, rows=100, noise=0.0, shift=0.0, seed=i)
        data.ingest(project)
    dataset = data.load_dataset(project)
    assert len(dataset.files) == 4 and dataset.left_out == ()
    assert len(dataset) == project.data.bootstrap_rows + 300 - dataset.duplicates


def test_the_window_takes_the_newest_accepted_batches(project):
    x, y = data.synthetic(300, seed=1)
    _accept(project, "c.csv", x[:100], y[:100], age_hours=3)
    _accept(project, "a.csv", x[100:200], y[100:200], age_hours=2)
    _accept(project, "b.csv", x[200:], y[200:], age_hours=1)
    newest_two = data.load_dataset(_windowed(project, max_batches=2, max_rows=1000))
    assert (newest_two.files, newest_two.left_out) == (("a.csv", "b.csv"), ("c.csv",))
    by_rows = data.load_dataset(_windowed(project, max_batches=10, max_rows=150))
    assert (by_rows.files, by_rows.left_out) == (("b.csv",), ("a.csv", "c.csv"))
    assert len(by_rows) == 100


def test_the_window_reads_cached_batches_and_reparses_an_edited_one(project):
    x, y = data.synthetic(50, seed=2)
    _accept(project, "w.csv", x, y)
    assert list(data.cache_dir(project).glob("w.csv.*.npy")), "accepted batches are cached in compact form"
    data.write_batch(data.accepted_dir(project) / "w.csv", x[:10], y[:10])  # edited by hand
    assert len(data.load_dataset(project)) == 10
    assert len(list(data.cache_dir(project).glob("w.csv.*.npy"))) == 1


def test_100000_copies_of_one_row_count_once(project):
    x, y = data.synthetic(2000, seed=3)
    _accept(project, "base.csv", x, y, age_hours=1)
    easy = np.tile(np.asarray([[5.0, 5.0]], dtype=np.float32), (100_000, 1))
    _accept(project, "flood.csv", easy, np.ones(100_000, dtype=np.float32))
    dataset = data.load_dataset(project)
    assert len(dataset) == len(np.unique(np.column_stack([x, y]), axis=0)) + 1
    assert dataset.duplicates >= 99_999
    split = data.split(dataset, 20, data.split_key(project))
    assert ((split.x_eval == [5.0, 5.0]).all(axis=1)).sum() <= 1, "the flood is one eval row at most"
    assert len(split.y_eval) < 0.3 * len(dataset)


def _fresh_key(project):
    project.split_key_path.unlink()  # the test config's fixed key: draw a real one
    return data.split_key(project)


def test_the_split_key_decides_the_sides(project):
    x, y = data.synthetic(2000, seed=4)
    dataset = data.Dataset(x, y, "f", ())
    first = data.split(dataset, 20, _fresh_key(project)).x_eval.tolist()
    assert data.split(dataset, 20, data.split_key(project)).x_eval.tolist() == first, "stable between runs"
    other = data.split(dataset, 20, bytes(32)).x_eval.tolist()
    shared = {tuple(r) for r in first} & {tuple(r) for r in other}
    assert len(shared) < 0.5 * len(first), "another key puts other rows on the eval side"


def test_the_split_key_is_created_once_and_private(project):
    key = _fresh_key(project)
    path = project.split_key_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 32 and key != bytes(32)
    before = path.read_bytes()
    assert data.split_key(project) == key and path.read_bytes() == before, "never drawn again"


@pytest.mark.parametrize(("content", "expected"), [(b"abc\n", "damaged"), (b"\xff\xfe", "cannot read the split key")])
def test_a_damaged_split_key_stops_with_a_clear_error(project, content, expected):
    project.split_key_path.write_bytes(content)
    with pytest.raises(DataError, match=expected):
        data.split_key(project)
    assert project.split_key_path.read_bytes() == content, "never replaced behind the operator's back"


@pytest.mark.slow
def test_a_retrain_goes_on_past_a_broken_batch_and_lists_the_batches_used(tmp_path):
    from harness.project import write_config
    from modelops.core.config import load_config
    from tests.conftest import json_load, run_cli

    config = load_config(write_config(tmp_path, data={"settle_seconds": 0, "window": {"max_batches": 2}}))
    data.ingest(config)  # the bootstrap batch, accepted first
    os.utime(data.accepted_dir(config) / "bootstrap.csv", (time.time() - 3600, time.time() - 3600))
    x, y = data.synthetic(2000, seed=9)
    _accept(config, "older.csv", x[:1000], y[:1000], age_hours=0.5)
    data.write_batch(_inbox(config) / "newer.csv", x[1000:], y[1000:])
    (_inbox(config) / "broken.csv").write_bytes(b'x1,x2,label\n0.1,"0.2,1\n' + b"0.5,0.7,1\n" * 20_000)
    result = run_cli("--config", str(config.root / "config.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    metrics = json_load(config.models_dir / "1" / "metrics.json")["dataset"]
    assert (metrics["files"], metrics["left_out"]) == (["newer.csv", "older.csv"], ["bootstrap.csv"])
    assert (data.quarantine_dir(config) / "broken.csv.reason.txt").exists()


PENGUIN_SCHEMA = Schema.from_config(
    {"island": {"type": "category", "values": ["Biscoe", "Dream"]},
     "bill_length_mm": {"type": "float", "min": 25, "max": 70, "optional": True},
     "sex": {"type": "category", "optional": True}},
    {"column": "species", "classes": ["Adelie", "Chinstrap", "Gentoo"]})


def test_a_declared_table_is_read_by_header_name_with_blanks_and_extra_columns():
    content = (b"year,Species,sex,island,bill_length_mm\n"
               b"2007,Gentoo,male,Biscoe,46.1\n"
               b"2008,Adelie,NA,Dream,\n")
    batch = data.read_rows(io.BytesIO(content), LIMITS, PENGUIN_SCHEMA)
    assert batch.ignored == ("year",), "the undeclared column is named, not used"
    assert batch.numbers[:, -1].tolist() == [2.0, 0.0], "labels as their class position"
    assert batch.numbers[0, 0] == pytest.approx(46.1) and np.isnan(batch.numbers[1, 0]), "a blank is missing"
    assert batch.text.tolist() == [["Biscoe", "male"], ["Dream", ""]]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"island,species\nBiscoe,Gentoo\n", "header must be the columns island,bill_length_mm,sex,species"),
        (b"island,bill_length_mm,sex,species\nBisco,40,male,Gentoo\n",
         "line 2: island must be one of Biscoe, Dream, got 'Bisco' (did you mean 'Biscoe'?)"),
        (b"island,bill_length_mm,sex,species\nDream,700,male,Gentoo\n", "line 2: bill_length_mm must be at most 70, "
                                                                         "got '700'"),
        (b"island,bill_length_mm,sex,species\n,40,male,Gentoo\n", "line 2: island is required but missing"),
        (b"island,bill_length_mm,sex,species\nDream,40,male,Emperor\n",
         "line 2: species must be one of Adelie, Chinstrap, Gentoo, got 'Emperor'"),
        (b"island,island,bill_length_mm,sex,species\nDream,Dream,40,male,Adelie\n", "'island' more than once"),
    ],
)
def test_a_bad_batch_of_a_declared_table_names_line_column_and_value(content, reason):
    with pytest.raises(DataError) as err:
        data.read_rows(io.BytesIO(content), LIMITS, PENGUIN_SCHEMA)
    assert reason in str(err.value)


def test_a_declared_table_is_never_bootstrapped_and_simulate_refuses(tmp_path):
    config = load_config(write_config(tmp_path, features=PENGUIN_SCHEMA.to_config()["features"],
                                      label=PENGUIN_SCHEMA.to_config()["label"]))
    assert not data.ingest(config).bootstrapped
    with pytest.raises(DataError, match="no data yet: drop CSV batches with the columns "
                                        "island,bill_length_mm,sex,species"):
        data.load_dataset(config)
    with pytest.raises(UsageError, match="simulate"):
        data.simulate(config, 10, 0.0, 0.0, seed=1)


def test_rows_with_text_are_deduplicated_split_by_their_text_too(tmp_path):
    config = load_config(write_config(tmp_path, features=PENGUIN_SCHEMA.to_config()["features"],
                                      label=PENGUIN_SCHEMA.to_config()["label"]))
    rows = "".join(f"{'Biscoe' if i % 2 else 'Dream'},{30 + i % 7},{'male' if i % 3 else ''},Gentoo\n"
                   for i in range(200))
    inbox = data.incoming_dir(config)
    inbox.mkdir(parents=True)
    (inbox / "a.csv").write_text("island,bill_length_mm,sex,species\n" + rows)
    data.ingest(config)
    dataset = data.load_dataset(config)
    assert len(dataset) == 2 * 7 * 2, "distinct (island, bill, sex male or missing): the copies are dropped"
    assert dataset.text is not None and {tuple(r) for r in dataset.text.tolist()} >= {("Dream", ""), ("Biscoe", "male")}
    again = data.load_dataset(config)  # from the cached copy
    assert again.fingerprint == dataset.fingerprint and again.text.tolist() == dataset.text.tolist()
    split = data.split(dataset, 50, bytes(32))
    assert len(split.y_eval) + len(split.y_train) == len(dataset) and split.text_eval.shape == (len(split.y_eval), 2)
