"""Ingest: good batches accepted, anything else quarantined with its reason, hand-off, bootstrap."""

import dataclasses
import os
import stat
import threading
import time

import pytest

from modelops.core.config import load_config
from modelops.core.errors import DataError, UsageError
from modelops.core.schema import Schema
from modelops.trainer.data import inbox, layout, synthetic, windowed
from tests.conftest import write_config

GOOD = b"x1,x2,label\n1.5,2.3,1\n0.8,-1.2,0\n"
PENGUIN_SCHEMA = Schema.from_config(
    {"island": {"type": "category", "values": ["Biscoe", "Dream"]},
     "bill_length_mm": {"type": "float", "min": 25, "max": 70, "optional": True},
     "sex": {"type": "category", "optional": True}},
    {"column": "species", "classes": ["Adelie", "Chinstrap", "Gentoo"]})


def test_ingest_quarantines_bad_batches_and_keeps_good_ones(project):
    incoming = layout.incoming_dir(project)
    incoming.mkdir(parents=True)
    (incoming / "good.csv").write_bytes(GOOD)
    (incoming / "labels.csv").write_bytes(b"x1,x2,label\n1,1,2\n")
    (incoming / "junk.csv").write_bytes(bytes(range(256)))
    (incoming / "notes.txt").write_text("hello")
    report = inbox.ingest(project)
    assert report.accepted == ("good.csv",)
    assert report.rows_accepted == 2
    assert {name for name, _ in report.quarantined} == {"labels.csv", "junk.csv", "notes.txt"}
    quarantine = layout.quarantine_dir(project)
    assert "label must be 0 or 1" in (quarantine / "labels.csv.reason.txt").read_text()
    assert (quarantine / "junk.csv").read_bytes() == bytes(range(256)), "quarantine keeps the original bytes"
    assert not list(incoming.iterdir())
    assert not report.bootstrapped, "good data exists, so no synthetic bootstrap"
    assert windowed.load_dataset(project).files == ("good.csv",)


def test_a_batch_with_the_same_name_never_overwrites_an_accepted_one(project):
    incoming = layout.incoming_dir(project)
    for content in (GOOD, b"x1,x2,label\n9,9,1\n"):
        incoming.mkdir(parents=True, exist_ok=True)
        (incoming / "weekly.csv").write_bytes(content)
        inbox.ingest(project)
    assert len(windowed.load_dataset(project)) == 3


def test_no_data_at_all_bootstraps_a_seeded_synthetic_set(project):
    report = inbox.ingest(project)
    assert report.bootstrapped
    first = windowed.load_dataset(project)
    assert len(first) == project.data.bootstrap_rows
    assert 0.3 < first.y.mean() < 0.7


def test_a_bootstrap_batch_over_the_ingest_limits_still_trains(project):
    """The limits guard incoming files; the trainer's own bootstrap batch must not fail every run."""
    small = dataclasses.replace(project.data, max_batch_bytes=4096, max_batch_rows=1000)
    config = dataclasses.replace(project, data=small)
    inbox.ingest(config)
    assert (layout.accepted_dir(config) / "bootstrap.csv").stat().st_size > small.max_batch_bytes
    assert len(windowed.load_dataset(config)) == project.data.bootstrap_rows


# --- ingest never blocks: whatever is in incoming/, it is accepted, set aside or left for later ---

def _inbox(config):
    incoming = layout.incoming_dir(config)
    incoming.mkdir(parents=True, exist_ok=True)
    return incoming


def _reason(config, name):
    return (layout.quarantine_dir(config) / f"{name}.reason.txt").read_text()


def test_a_stray_quote_before_20000_good_rows_quarantines_that_batch_only(project):
    incoming = _inbox(project)
    (incoming / "a-stray-quote.csv").write_bytes(b'x1,x2,label\n0.1,"0.2,1\n' + b"0.5,0.7,1\n" * 20_000)
    (incoming / "b-good.csv").write_bytes(GOOD)
    report = inbox.ingest(project)
    assert report.accepted == ("b-good.csv",)
    [(name, reason)] = report.quarantined
    assert name == "a-stray-quote.csv"
    assert "line 2" in reason and '"' in reason, "names the line and the stray quote"
    assert "line 2" in _reason(project, name) and "data/incoming/" in _reason(project, name), "says how to retry"
    assert windowed.load_dataset(project).files == ("b-good.csv",)


def test_an_unclosed_quote_in_a_small_file_names_the_lines_it_swallows(project):
    (_inbox(project) / "b.csv").write_bytes(b'x1,x2,label\n0.1,0.2,1\n0.1,"0.2,1\n0.3,0.4,0\n')
    [(_, reason)] = inbox.ingest(project).quarantined
    assert "line 3" in reason and "quoted field" in reason


def test_a_bad_byte_mid_file_names_its_line(project):
    (_inbox(project) / "latin1.csv").write_bytes(b"x1,x2,label\n1,2,1\n0.5,0.5,0 # caf\xe9\n")
    [(_, reason)] = inbox.ingest(project).quarantined
    assert "line 3: not UTF-8" in reason


def test_a_batch_over_the_byte_cap_is_set_aside_unread(tmp_path):
    from modelops.core.config import load_config
    from tests.conftest import write_config

    config = load_config(write_config(tmp_path, data={"max_batch_bytes": 1000, "settle_seconds": 0}))
    incoming = _inbox(config)
    with (incoming / "huge.csv").open("wb") as fh:
        fh.truncate(10**12)  # a sparse terabyte: reading it would never finish
    (incoming / "small.csv").write_bytes(GOOD)
    report = inbox.ingest(config)
    assert report.accepted == ("small.csv",)
    [(name, reason)] = report.quarantined
    assert name == "huge.csv" and "data.max_batch_bytes (1000)" in reason and str(10**12) in reason


def test_an_unreadable_batch_is_quarantined_with_what_to_do(project, monkeypatch):
    incoming = _inbox(project)
    (incoming / "locked.csv").write_bytes(GOOD)
    (incoming / "ok.csv").write_bytes(GOOD)
    real_open = os.open

    def deny(path, *args, **kwargs):  # as root, chmod 000 would not stop the read
        if os.fspath(path).endswith("locked.csv"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    report = inbox.ingest(project)
    assert report.accepted == ("ok.csv",)
    [(name, reason)] = report.quarantined
    assert name == "locked.csv" and "Permission denied" in reason and "readable" in reason


def test_links_pipes_and_directories_are_set_aside_never_followed(project, tmp_path):
    incoming = _inbox(project)
    outside = tmp_path / "outside.csv"
    outside.write_bytes(GOOD)
    (incoming / "link.csv").symlink_to(outside)
    (incoming / "dangling.csv").symlink_to(tmp_path / "gone.csv")
    os.mkfifo(incoming / "pipe.csv")  # opening it would block the run until a writer comes
    (incoming / "folder.csv").mkdir()
    (incoming / "good.csv").write_bytes(GOOD)
    report = inbox.ingest(project)
    assert report.accepted == ("good.csv",)
    reasons = dict(report.quarantined)
    assert set(reasons) == {"link.csv", "dangling.csv", "pipe.csv", "folder.csv"}
    assert "symbolic link" in reasons["link.csv"] and "symbolic link" in reasons["dangling.csv"]
    assert "FIFO" in reasons["pipe.csv"] and "directory" in reasons["folder.csv"]
    quarantine = layout.quarantine_dir(project)
    assert (quarantine / "link.csv").is_symlink() and outside.read_bytes() == GOOD, "the link moved, not its target"
    assert stat.S_ISFIFO(os.lstat(quarantine / "pipe.csv").st_mode)
    assert not list(incoming.iterdir())


def test_hand_off_names_are_ignored_until_renamed(project):
    incoming = _inbox(project)
    (incoming / "week.csv.partial").write_bytes(GOOD)
    (incoming / ".week2.csv.tmp").write_bytes(GOOD)
    report = inbox.ingest(project)
    assert (report.accepted, report.quarantined) == ((), ())
    assert sorted(p.name for p in incoming.iterdir()) == [".week2.csv.tmp", "week.csv.partial"]
    os.replace(incoming / "week.csv.partial", incoming / "week.csv")
    assert inbox.ingest(project).accepted == ("week.csv",)


def _settling(project, seconds):
    return dataclasses.replace(project, data=dataclasses.replace(project.data, settle_seconds=seconds))


def test_a_file_still_being_copied_is_left_for_the_next_run(project):
    config = _settling(project, 1.0)
    incoming = _inbox(config)
    growing = incoming / "copying.csv"
    growing.write_bytes(b"x1,x2,label\n")
    (incoming / "old.csv").write_bytes(GOOD)
    os.utime(incoming / "old.csv", (time.time() - 3600, time.time() - 3600))
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
        report = inbox.ingest(config)
    finally:
        done.set()
        writer.join()
    assert report.accepted == ("old.csv",) and report.waiting == ("copying.csv",)
    assert report.quarantined == (), "a half-copied file is not judged"
    assert growing.exists()
    os.utime(growing, (time.time() - 3600, time.time() - 3600))  # the copy finished long ago
    assert inbox.ingest(config).accepted == ("copying.csv",)


def test_a_settled_file_is_judged_at_once(project):
    config = _settling(project, 3600.0)
    incoming = _inbox(config)
    (incoming / "old.csv").write_bytes(GOOD)
    os.utime(incoming / "old.csv", (time.time() - 7200, time.time() - 7200))
    assert inbox.ingest(config).accepted == ("old.csv",)


def test_a_declared_table_is_never_bootstrapped_and_simulate_refuses(tmp_path):
    config = load_config(write_config(tmp_path, features=PENGUIN_SCHEMA.to_config()["features"],
                                      label=PENGUIN_SCHEMA.to_config()["label"]))
    assert not inbox.ingest(config).bootstrapped
    with pytest.raises(DataError, match="no data yet: drop CSV batches with the columns "
                                        "island,bill_length_mm,sex,species"):
        windowed.load_dataset(config)
    with pytest.raises(UsageError, match="simulate"):
        synthetic.simulate(config, 10, 0.0, 0.0, seed=1)
