"""The training set: window, de-duplication, the keyed split, the synthetic demo data."""

import dataclasses
import os
import stat
import time

import numpy as np
import pytest

from modelops.core.config import WindowConfig, load_config
from modelops.core.errors import DataError
from modelops.core.schema import Schema
from modelops.trainer.data import holdout, inbox, layout, synthetic, tables, windowed
from tests.conftest import write_config

PENGUIN_SCHEMA = Schema.from_config(
    {"island": {"type": "category", "values": ["Biscoe", "Dream"]},
     "bill_length_mm": {"type": "float", "min": 25, "max": 70, "optional": True},
     "sex": {"type": "category", "optional": True}},
    {"column": "species", "classes": ["Adelie", "Chinstrap", "Gentoo"]})


def test_split_is_deterministic_per_row_whatever_else_is_in_the_dataset():
    x, y = synthetic.synthetic(1000, seed=1)
    small = tables.Dataset(x[:500], y[:500], "a", ())
    large = tables.Dataset(x, y, "b", ())
    key = bytes(32)
    eval_small = {tuple(r) for r in holdout.split(small, 20, key).x_eval.tolist()}
    eval_large = {tuple(r) for r in holdout.split(large, 20, key).x_eval.tolist()}
    assert eval_small <= eval_large, "adding rows never moves an old row to the other side"
    assert 0.14 < len(eval_large) / 1000 < 0.26


def test_fingerprint_changes_with_the_data(project):
    inbox.ingest(project)
    before = windowed.load_dataset(project).fingerprint
    synthetic.simulate(project, rows=10, noise=0.0, shift=0.0, seed=3)
    inbox.ingest(project)
    assert windowed.load_dataset(project).fingerprint != before


def test_simulated_noise_flips_labels():
    x, clean = synthetic.synthetic(2000, seed=5)
    _, noisy = synthetic.synthetic(2000, seed=5, noise=0.3)
    truth = (x[:, 0] + x[:, 1] > synthetic.BOUNDARY).astype(np.float32)
    assert (clean == truth).mean() > 0.98
    assert (noisy == truth).mean() < 0.75


# --- bounded training data: window, de-duplication, keyed split ---

def _accept(config, name, x, y, age_hours=0.0):
    """Accept one batch now, then date its acceptance ``age_hours`` back."""
    synthetic.write_batch(layout.incoming_dir(config) / name, x, y)
    assert inbox.ingest(config).accepted == (name,)
    accepted = layout.accepted_dir(config) / name
    when = time.time() - age_hours * 3600
    os.utime(accepted, (when, when))


def _windowed(config, **window):
    return dataclasses.replace(config, data=dataclasses.replace(config.data, window=WindowConfig(**window)))


def test_the_default_window_keeps_all_of_a_small_dataset(project):
    inbox.ingest(project)  # bootstrap
    for i in range(3):
        synthetic.simulate(project, rows=100, noise=0.0, shift=0.0, seed=i)
        inbox.ingest(project)
    dataset = windowed.load_dataset(project)
    assert len(dataset.files) == 4 and dataset.left_out == ()
    assert len(dataset) == project.data.bootstrap_rows + 300 - dataset.duplicates


def test_the_window_takes_the_newest_accepted_batches(project):
    x, y = synthetic.synthetic(300, seed=1)
    _accept(project, "c.csv", x[:100], y[:100], age_hours=3)
    _accept(project, "a.csv", x[100:200], y[100:200], age_hours=2)
    _accept(project, "b.csv", x[200:], y[200:], age_hours=1)
    newest_two = windowed.load_dataset(_windowed(project, max_batches=2, max_rows=1000))
    assert (newest_two.files, newest_two.left_out) == (("a.csv", "b.csv"), ("c.csv",))
    by_rows = windowed.load_dataset(_windowed(project, max_batches=10, max_rows=150))
    assert (by_rows.files, by_rows.left_out) == (("b.csv",), ("a.csv", "c.csv"))
    assert len(by_rows) == 100


def test_the_window_reads_cached_batches_and_reparses_an_edited_one(project):
    x, y = synthetic.synthetic(50, seed=2)
    _accept(project, "w.csv", x, y)
    assert list(layout.cache_dir(project).glob("w.csv.*.npy")), "accepted batches are cached in compact form"
    synthetic.write_batch(layout.accepted_dir(project) / "w.csv", x[:10], y[:10])  # edited by hand
    assert len(windowed.load_dataset(project)) == 10
    assert len(list(layout.cache_dir(project).glob("w.csv.*.npy"))) == 1


def test_100000_copies_of_one_row_count_once(project):
    x, y = synthetic.synthetic(2000, seed=3)
    _accept(project, "base.csv", x, y, age_hours=1)
    easy = np.tile(np.asarray([[5.0, 5.0]], dtype=np.float32), (100_000, 1))
    _accept(project, "flood.csv", easy, np.ones(100_000, dtype=np.float32))
    dataset = windowed.load_dataset(project)
    assert len(dataset) == len(np.unique(np.column_stack([x, y]), axis=0)) + 1
    assert dataset.duplicates >= 99_999
    split = holdout.split(dataset, 20, holdout.split_key(project))
    assert ((split.x_eval == [5.0, 5.0]).all(axis=1)).sum() <= 1, "the flood is one eval row at most"
    assert len(split.y_eval) < 0.3 * len(dataset)


def _fresh_key(project):
    project.split_key_path.unlink()  # the test config's fixed key: draw a real one
    return holdout.split_key(project)


def test_the_split_key_decides_the_sides(project):
    x, y = synthetic.synthetic(2000, seed=4)
    dataset = tables.Dataset(x, y, "f", ())
    first = holdout.split(dataset, 20, _fresh_key(project)).x_eval.tolist()
    assert holdout.split(dataset, 20, holdout.split_key(project)).x_eval.tolist() == first, "stable between runs"
    other = holdout.split(dataset, 20, bytes(32)).x_eval.tolist()
    shared = {tuple(r) for r in first} & {tuple(r) for r in other}
    assert len(shared) < 0.5 * len(first), "another key puts other rows on the eval side"


def test_the_split_key_is_created_once_and_private(project):
    key = _fresh_key(project)
    path = project.split_key_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) == 32 and key != bytes(32)
    before = path.read_bytes()
    assert holdout.split_key(project) == key and path.read_bytes() == before, "never drawn again"


@pytest.mark.parametrize(("content", "expected"), [(b"abc\n", "damaged"), (b"\xff\xfe", "cannot read the split key")])
def test_a_damaged_split_key_stops_with_a_clear_error(project, content, expected):
    project.split_key_path.write_bytes(content)
    with pytest.raises(DataError, match=expected):
        holdout.split_key(project)
    assert project.split_key_path.read_bytes() == content, "never replaced behind the operator's back"


@pytest.mark.slow
def test_a_retrain_goes_on_past_a_broken_batch_and_lists_the_batches_used(tmp_path):
    from modelops.core.config import load_config
    from tests.conftest import json_load, run_cli, write_config

    config = load_config(write_config(tmp_path, data={"settle_seconds": 0, "window": {"max_batches": 2}}))
    inbox.ingest(config)  # the bootstrap batch, accepted first
    os.utime(layout.accepted_dir(config) / "bootstrap.csv", (time.time() - 3600, time.time() - 3600))
    x, y = synthetic.synthetic(2000, seed=9)
    _accept(config, "older.csv", x[:1000], y[:1000], age_hours=0.5)
    synthetic.write_batch(layout.incoming_dir(config) / "newer.csv", x[1000:], y[1000:])
    (layout.incoming_dir(config) / "broken.csv").write_bytes(b'x1,x2,label\n0.1,"0.2,1\n' + b"0.5,0.7,1\n" * 20_000)
    result = run_cli("--config", str(config.root / "config.json"))
    assert result.returncode == 0, result.stdout + result.stderr
    metrics = json_load(config.models_dir / "1" / "metrics.json")["dataset"]
    assert (metrics["files"], metrics["left_out"]) == (["newer.csv", "older.csv"], ["bootstrap.csv"])
    assert (layout.quarantine_dir(config) / "broken.csv.reason.txt").exists()


def test_rows_with_text_are_deduplicated_split_by_their_text_too(tmp_path):
    config = load_config(write_config(tmp_path, features=PENGUIN_SCHEMA.to_config()["features"],
                                      label=PENGUIN_SCHEMA.to_config()["label"]))
    rows = "".join(f"{'Biscoe' if i % 2 else 'Dream'},{30 + i % 7},{'male' if i % 3 else ''},Gentoo\n"
                   for i in range(200))
    incoming = layout.incoming_dir(config)
    incoming.mkdir(parents=True)
    (incoming / "a.csv").write_text("island,bill_length_mm,sex,species\n" + rows)
    inbox.ingest(config)
    dataset = windowed.load_dataset(config)
    assert len(dataset) == 2 * 7 * 2, "distinct (island, bill, sex male or missing): the copies are dropped"
    assert dataset.text is not None and {tuple(r) for r in dataset.text.tolist()} >= {("Dream", ""), ("Biscoe", "male")}
    again = windowed.load_dataset(config)  # from the cached copy
    assert again.fingerprint == dataset.fingerprint and again.text.tolist() == dataset.text.tolist()
    split = holdout.split(dataset, 50, bytes(32))
    assert len(split.y_eval) + len(split.y_train) == len(dataset) and split.text_eval.shape == (len(split.y_eval), 2)
