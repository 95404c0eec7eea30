"""The demo's synthetic batches step aside when config.json declares another table."""

import dataclasses

from modelops.core.config import load_config
from modelops.trainer.data import inbox, layout, synthetic, windowed
from tests.conftest import write_config

PENGUINS = {
    "features": {"island": {"type": "category", "values": ["Biscoe", "Dream", "Torgersen"]},
                 "bill_length_mm": {"type": "float", "min": 25, "max": 70, "optional": True}},
    "label": {"column": "species", "classes": ["Adelie", "Chinstrap", "Gentoo"]},
}
PENGUIN_ROWS = "island,bill_length_mm,species\n" + "Biscoe,48.6,Gentoo\nDream,39.5,Adelie\n" * 5


def _demo_then_penguins(tmp_path):
    """A project that ran the demo (bootstrap + a simulated batch), then declared the penguins table."""
    demo = load_config(write_config(tmp_path, data={"bootstrap_rows": 50}))
    assert inbox.ingest(demo).bootstrapped
    synthetic.simulate(demo, rows=20, noise=0.0, shift=0.0, seed=1)
    assert len(inbox.ingest(demo).accepted) == 1
    return load_config(write_config(tmp_path, **PENGUINS))


def test_the_first_run_on_another_table_retires_bootstrap_and_simulated_batches_once(tmp_path):
    penguins = _demo_then_penguins(tmp_path)
    (layout.incoming_dir(penguins) / "week-01.csv").write_text(PENGUIN_ROWS)
    report = inbox.ingest(penguins)
    assert report.accepted == ("week-01.csv",)
    assert report.retired[0] == "bootstrap.csv" and report.retired[1].startswith("sim-")
    assert sorted(p.name for p in (penguins.data_dir / "retired").iterdir()) == sorted(report.retired), "kept"
    assert windowed.load_dataset(penguins).files == ("week-01.csv",), "the window holds the declared table only"
    assert inbox.ingest(penguins).retired == (), "said once: nothing left to retire"


def test_a_users_own_batch_is_never_retired_whatever_its_name(tmp_path):
    penguins = _demo_then_penguins(tmp_path)
    mine = layout.accepted_dir(penguins) / "sim-mine.csv"
    mine.write_text(PENGUIN_ROWS)
    inbox.ingest(penguins)
    assert mine.exists()


def test_the_demo_schema_keeps_its_synthetic_batches(tmp_path):
    demo = load_config(write_config(tmp_path, data={"bootstrap_rows": 50}))
    inbox.ingest(demo)
    assert inbox.ingest(dataclasses.replace(demo)).retired == ()
    assert (layout.accepted_dir(demo) / "bootstrap.csv").exists()
