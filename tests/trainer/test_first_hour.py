"""Issue 29's first-hour papercuts on the trainer side: the console names each quarantined batch with
its first reason and only says "no data yet" when nothing was dropped; ``status`` names the gate's
metric for what it is and shows accuracy as accuracy."""

from __future__ import annotations

from harness.project import write_config
from modelops.core.config import load_config
from modelops.core.store import ModelStore
from modelops.trainer.cli import status_lines
from modelops.trainer.data import layout
from modelops.trainer.retrain import run

FEATURES = {"Year": {"type": "int", "min": 1970, "max": 1982}, "Origin": {"type": "category",
                                                                       "values": ["USA", "Europe", "Japan"]}}
LABEL = {"column": "Cylinders", "classes": ["4", "6", "8"]}


def test_the_console_names_each_quarantined_batch_with_its_reason_not_no_data_yet(tmp_path):
    config = load_config(write_config(tmp_path, features=FEATURES, label=LABEL))
    incoming = layout.incoming_dir(config)
    incoming.mkdir(parents=True, exist_ok=True)
    for name in ("cars-1.csv", "cars-2.csv"):
        (incoming / name).write_text("Year,Origin,Cylinders\n1976-01-01,USA,8\n1977-01-01,Japan,4\n")
    lines: list[str] = []
    result = run.retrain(config, echo=lines.append)
    console = "\n".join(lines)
    assert result.outcome == "failed"
    for name in ("cars-1.csv", "cars-2.csv"):
        line = next(line for line in lines if line.startswith(f"quarantined '{name}': "))
        assert "Year" in line, line
    assert "no data yet" not in console and "no data yet" not in result.message
    assert "quarantined" in result.message and str(layout.quarantine_dir(config)) in result.message
    assert ModelStore(config.models_dir).versions() == []


def test_status_names_the_gates_metric_and_shows_accuracy_as_accuracy(tmp_path):
    config = load_config(write_config(tmp_path))
    store = ModelStore(config.models_dir)
    candidate = tmp_path / "candidate"
    candidate.mkdir()
    store.publish(candidate, store.reserve_version(), {
        "test_accuracy_percent": 65.97, "promoted_at": "2026-01-01T00:00:00Z",
        "gate": {"metric": "balanced_accuracy"}, "scores_percent": {"accuracy": 71.64, "balanced_accuracy": 65.97}})
    text = "\n".join(status_lines(config))
    assert "v1: Balanced accuracy 65.97% (accuracy 71.64%)" in text
    assert "Test accuracy" not in text


def test_compare_input_ignores_an_extra_column_and_uses_the_declared_bounds(tmp_path):
    from modelops.core.schema import Schema
    from modelops.trainer import compare

    schema = Schema.from_config({"Weight_in_lbs": {"type": "float", "min": 1500, "max": 5500},
                                 "Origin": {"type": "category", "values": ["USA", "Europe", "Japan"]}}, LABEL)
    path = tmp_path / "cars.csv"
    path.write_text("Name,Weight_in_lbs,Origin\nchevrolet chevelle,3504,USA\ntoyota corona,2372,Japan\n")
    rows = compare.read_csv(path, 1000.0, 100, schema)  # data.max_abs_feature's default: 1000
    assert rows.x == [{"Weight_in_lbs": 3504.0, "Origin": "USA"}, {"Weight_in_lbs": 2372.0, "Origin": "Japan"}]


def test_a_run_with_nothing_new_publishes_nothing_and_records_up_to_date_unless_forced(tmp_path):
    from modelops.core import history
    from modelops.trainer import metrics as trainer_metrics

    config = load_config(write_config(tmp_path))
    store = ModelStore(config.models_dir)
    first = run.retrain(config, echo=lambda line: None)
    assert first.outcome == "promoted", first.message

    again = run.retrain(config, echo=lambda line: None)
    assert again.outcome == "up_to_date" and again.exit_code == 0
    assert "no new accepted rows since v1" in again.message and "--force" in again.message
    assert store.versions() == [1]
    assert history.read(config.history_path)[-1]["event"] == "up-to-date"
    assert [s["outcome"] for s in trainer_metrics.runs(history.read(config.history_path))] == [
        "promoted", "up_to_date"], "counted as a run of its own (modelops_trainer_runs_total)"
    assert store.reserve_version() == 2, "the up-to-date run used up no version number"

    forced = run.retrain(config, echo=lambda line: None, force=True)
    assert forced.outcome in ("promoted", "rejected") and forced.version == 3
