"""add-batch: a CSV reaches data/incoming/ by the hand-off rules, then ingest judges it as any other."""

import io
import sys

import pytest

from modelops.core.config import load_config
from modelops.core.errors import UsageError
from modelops.trainer import cli
from modelops.trainer.data import handoff, inbox, layout
from tests.conftest import write_config

GOOD = b"x1,x2,label\n1.5,2.3,1\n0.8,-1.2,0\n"


def test_a_file_is_copied_in_under_its_name_and_ingest_accepts_it(project, tmp_path):
    source = tmp_path / "week-01.csv"
    source.write_bytes(GOOD)
    [line] = handoff.add_batches(project, [str(source)], None)
    target = layout.incoming_dir(project) / "week-01.csv"
    assert target.read_bytes() == GOOD and source.exists(), "a copy: the user's file stays"
    assert str(target) in line and str(project.data_dir / "quarantine") in line, "the message names the folders"
    assert not list(layout.incoming_dir(project).glob("*.partial"))
    assert inbox.ingest(project).accepted == ("week-01.csv",)


def test_a_name_already_waiting_gets_a_numbered_one_instead_of_overwriting(project, tmp_path):
    source = tmp_path / "week.csv"
    source.write_bytes(GOOD)
    handoff.add_batches(project, [str(source)], None)
    handoff.add_batches(project, [str(source)], None)
    assert sorted(p.name for p in layout.incoming_dir(project).iterdir()) == ["week.1.csv", "week.csv"]


def test_standard_input_through_the_command_line_as_compose_exec_does(tmp_path, monkeypatch, capsys):
    path = write_config(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(GOOD)))
    assert cli.main(["--config", str(path), "add-batch", "--name", "week-02.csv", "-"]) == 0
    assert (layout.incoming_dir(load_config(path)) / "week-02.csv").read_bytes() == GOOD
    assert "week-02.csv" in capsys.readouterr().out


@pytest.mark.parametrize("args", [["-"], ["--name", "../x.csv", "-"], ["--name", ".hidden.csv", "-"],
                                  ["--name", "notes.txt", "-"], ["missing.csv"]])
def test_bad_use_is_a_usage_error_exit_2_and_nothing_lands(tmp_path, monkeypatch, capsys, args):
    path = write_config(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(GOOD)))
    assert cli.main(["--config", str(path), "add-batch", *args]) == 2
    assert "add-batch" in capsys.readouterr().err
    incoming = layout.incoming_dir(load_config(path))
    assert not incoming.exists() or not list(incoming.iterdir())


def test_a_batch_over_the_size_limit_is_refused_and_leaves_no_partial_file(tmp_path):
    config = load_config(write_config(tmp_path, data={"max_batch_bytes": 10}))
    with pytest.raises(UsageError, match="data.max_batch_bytes"):
        handoff.add_batch(config, io.BytesIO(GOOD), "big.csv")
    assert not list(layout.incoming_dir(config).iterdir())
