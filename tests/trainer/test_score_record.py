"""``retrain_pipeline.py score`` reads the version's schema from its record as the frontend does: a
damaged metrics.json stops the run with a clear message and exit code 5, nothing written and no
guess from config.json."""

from __future__ import annotations

import argparse

import pytest

from harness.project import write_config
from modelops.core.config import load_config
from modelops.core.exit_codes import ExitCode
from modelops.trainer import score


class Served:
    """A serving client with version 1 AVAILABLE that must never be asked to predict."""

    def latest_version(self, max_age=None):
        return 1

    def predict_columns(self, inputs, version=None):
        raise AssertionError("no row may be scored with a guessed schema")


@pytest.mark.parametrize("damage", ["{not json", '{"schema": {"features": 3, "label": {}}}'])
def test_a_damaged_record_stops_the_command_with_exit_5_and_says_why(tmp_path, capsys, damage):
    config = load_config(write_config(tmp_path))
    (config.models_dir / "1").mkdir(parents=True)
    (config.models_dir / "1" / "metrics.json").write_text(damage)
    (tmp_path / "in.csv").write_text("x1,x2\n0.1,0.2\n")
    args = argparse.Namespace(input=str(tmp_path / "in.csv"), output=str(tmp_path / "out.csv"), version=None,
                              label=None, chunk_rows=100)
    assert score.run(args, config, client=Served()) == ExitCode.UNSCORED == 5
    err = capsys.readouterr().err
    assert "version 1's metrics.json" in err and "retrain, or roll back" in err and "nothing was scored" in err
    assert not (tmp_path / "out.csv").exists()
