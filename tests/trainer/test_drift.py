"""Drift: reference statistics per version, batches scored against the serving version's reference."""

import json

import numpy as np
import pytest

from harness.project import write_config
from modelops.core import history, psi
from modelops.core.config import load_config
from modelops.core.schema import DEMO_SCHEMA, Feature, Label, Schema
from modelops.trainer import drift
from modelops.trainer.data import layout, synthetic
from modelops.trainer.retrain import run
from tests.conftest import json_load, quiet, run_cli

MIXED = Schema((Feature("size"), Feature("color", "category", ("red", "blue")), Feature("city", "category"),
                Feature("age", "int", optional=True)), Label("kind", ("a", "b", "c")))


def demo_rows(n: int, seed: int, x1_shift: float = 0.0) -> drift.Table:
    x, y = synthetic.synthetic(n, seed=seed)
    x[:, 0] += x1_shift
    return drift.table(DEMO_SCHEMA, x, y)


def test_the_reference_is_small_and_bounded_by_the_bins():
    ref = drift.reference(DEMO_SCHEMA, demo_rows(5000, seed=1), bins=10)
    x1 = ref["features"]["x1"]
    assert x1["count"] == 5000 and x1["blanks"] == 0
    assert x1["mean"] == pytest.approx(0.5, abs=0.1) and x1["std"] == pytest.approx(1.5, abs=0.1)
    assert len(x1["edges"]) == 9 and len(x1["shares"]) == 11  # 10 bins and the missing slot
    assert sum(x1["shares"]) == pytest.approx(1.0) and x1["shares"][-1] == 0.0
    assert ref["label"]["classes"] == ["0", "1"] and sum(ref["label"]["shares"]) == pytest.approx(1.0)
    assert len(json.dumps(ref)) < 2000


def test_a_batch_moved_by_three_standard_deviations_drifts_and_an_unmoved_one_does_not():
    ref = drift.reference(DEMO_SCHEMA, demo_rows(5000, seed=1), bins=10)
    moved = drift.score(ref, demo_rows(400, seed=2, x1_shift=3 * 1.5), threshold=0.2, min_rows=200)
    same = drift.score(ref, demo_rows(400, seed=3), threshold=0.2, min_rows=200)
    assert drift.drifted_names(moved) == ["x1"] and moved["features"]["x1"]["score"] > 1.0
    assert drift.drifted_names(same) == [] and same["features"]["x1"]["score"] < 0.2
    assert "DRIFTED: x1" in drift.describe(moved, 0.2, 200)


def test_a_batch_under_min_rows_is_scored_but_never_flagged():
    ref = drift.reference(DEMO_SCHEMA, demo_rows(5000, seed=1), bins=10)
    small = drift.score(ref, demo_rows(50, seed=2, x1_shift=4.5), threshold=0.2, min_rows=200)
    assert small["features"]["x1"]["score"] > 1.0 and drift.drifted_names(small) == []
    assert "not judged (50 rows < drift.min_rows 200)" in drift.describe(small, 0.2, 200)


def test_every_declared_feature_has_a_reference_categories_with_out_of_vocabulary_and_missing_shares():
    rng = np.random.default_rng(0)
    n = 1000
    x = np.column_stack([rng.normal(size=n), np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 90, n))])
    text = np.column_stack([rng.choice(["red", "blue"], n), rng.choice(["paris", "oslo", ""], n)])
    labels = rng.integers(0, 3, n)
    rows = drift.Table({**drift.table(MIXED, x, labels, text).columns}, labels)
    ref = drift.reference(MIXED, rows, bins=5)
    assert set(ref["features"]) == {"size", "color", "city", "age"}
    assert ref["features"]["age"]["blanks"] == pytest.approx(100, abs=40) and ref["features"]["age"]["shares"][-1] > 0
    city = ref["features"]["city"]
    assert sorted(city["values"]) == ["oslo", "paris"] and len(city["shares"]) == 4  # values, other, missing
    assert ref["label"]["classes"] == ["a", "b", "c"]
    # a new city nobody trained on: the out-of-vocabulary share moves
    unseen = drift.Table({**rows.columns, "city": np.full(n, "lima")}, labels)
    assert drift.drifted_names(drift.score(ref, unseen, 0.2, 200)) == ["city"]


def test_the_frontend_and_the_trainer_put_a_value_in_the_same_slot():
    ref = drift.reference(DEMO_SCHEMA, demo_rows(2000, seed=1), bins=10)["features"]["x1"]
    values = np.array([-5.0, ref["edges"][0], ref["edges"][3] + 1e-3, 0.5, 9.0, np.nan])
    assert drift.counts(ref, values) == np.bincount([psi.slot(ref, v) for v in values.tolist()],
                                                    minlength=len(ref["shares"])).tolist()
    assert psi.slot(ref, None) == len(ref["shares"]) - 1


def write_moved_batch(config, name: str, rows: int, seed: int, x1_shift: float) -> None:
    x, y = synthetic.synthetic(rows, seed=seed)
    x[:, 0] += x1_shift
    synthetic.write_batch(layout.incoming_dir(config) / name, x, y)


@pytest.mark.slow
def test_a_moved_batch_is_named_in_the_run_log_the_record_and_drift_json_an_unmoved_one_is_not(trained_project):
    # a floor no candidate reaches: v1 keeps serving, so `drift` scores against the reference the run used
    config = load_config(write_config(trained_project.root, gate={"min_accuracy_percent": 100.0}))
    ref = json_load(config.models_dir / "1" / "metrics.json")["reference"]
    assert set(ref["features"]) == {"x1", "x2"} and len(ref["features"]["x1"]["edges"]) == config.drift.bins - 1
    std = ref["features"]["x1"]["std"]
    write_moved_batch(config, "moved.csv", 400, seed=5, x1_shift=3 * std)
    write_moved_batch(config, "same.csv", 400, seed=6, x1_shift=0.0)
    assert run.retrain(config, echo=quiet).outcome == "rejected"
    log = config.train_log_path.read_text()
    [moved_line] = [line for line in log.splitlines() if "drift of moved.csv" in line]
    [same_line] = [line for line in log.splitlines() if "drift of same.csv" in line]
    assert "DRIFTED: x1" in moved_line and "x2" not in moved_line.split(";")[0]
    assert "DRIFTED" not in same_line
    record = history.read(config.history_path)[-1]
    assert record["drift"]["x1"]["drifted"] is True and record["drift"]["x2"]["drifted"] is False
    assert record["drift_reference_version"] == 1
    # the served v1 learned label = x1 + x2 > 1: rows moved along x1 are still mostly right, never all wrong
    assert 50.0 < record["served_accuracy_on_new"] <= 100.0

    result = run_cli("--config", str(config.root / "config.json"), "drift", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    batches = {b["file"]: b for b in report["batches"]}
    assert report["reference_version"] == 1
    assert batches["moved.csv"]["rows"] == 400 and batches["moved.csv"]["features"]["x1"]["drifted"] is True
    assert not any(f["drifted"] for f in batches["same.csv"]["features"].values())
    table = run_cli("--config", str(config.root / "config.json"), "drift")
    assert "moved.csv (400 rows): x1" in table.stdout and "*" in table.stdout.split("moved.csv")[1].splitlines()[0]

    # the model page, from the run's record (serving down: the page still renders)
    from prometheus_client import CollectorRegistry

    from modelops.web import create_app
    from tests.trainer.conftest import dead_url

    app = create_app({"TESTING": True, "MODELOPS_CONFIG": config.root / "config.json", "TF_HOST": dead_url(),
                      "METRICS_REGISTRY": CollectorRegistry()})
    card = app.test_client().get("/").get_data(as_text=True).split('id="drift"')[1].split("</section>")[0]
    rows = {name: card.split(f'<th scope="row">{name}</th>')[1].split("</tr>")[0] for name in ("x1", "x2")}
    assert "drifted" in rows["x1"] and "drifted" not in rows["x2"]


def test_trainer_metrics_export_the_last_batch_drift_per_declared_feature_only(project):
    from tests.trainer.test_metrics import scrape

    history.append(project.history_path, "promote", run_id="a", version=1, served_accuracy_on_new=99.0,
                   drift={"x1": {"score": 0.01, "drifted": False}})
    history.append(project.history_path, "reject", run_id="b", version=2, served_accuracy_on_new=80.5,
                   drift={"x1": {"score": 2.5, "drifted": True}, "x2": {"score": 0.05, "drifted": False},
                          "not_a_feature": {"score": 9.0, "drifted": True}})
    m = scrape(project)
    assert m[("modelops_trainer_batch_drift_score", (("feature", "x1"),))] == 2.5
    assert m[("modelops_trainer_batch_drifted", (("feature", "x1"),))] == 1
    assert m[("modelops_trainer_batch_drifted", (("feature", "x2"),))] == 0
    assert not [k for k in m if ("feature", "not_a_feature") in k[1]], "label values come from the schema only"
    assert m[("modelops_trainer_served_accuracy_on_new_ratio", ())] == pytest.approx(0.805)
    assert m[("modelops_trainer_gate_min_accuracy_ratio", ())] == pytest.approx(0.97)


@pytest.mark.parametrize(
    ("sections", "expected"),
    [
        ({"drift": {"bins": 1}}, "'drift.bins' must be between 2 and 100, got 1"),
        ({"drift": {"treshold": 0.3}}, "unknown key 'drift.treshold' (did you mean 'drift.threshold'?)"),
        ({"drift": {"min_rows": 0}}, "'drift.min_rows' must be at least 1"),
        ({"drift": {"live_window": "big"}}, "'drift.live_window' must be an integer"),
        ({"schedule": {"triggers": {"min_new_row": 400}}},
         "unknown key 'schedule.triggers.min_new_row' (did you mean 'schedule.triggers.min_new_rows'?)"),
        ({"schedule": {"triggers": {"on_drift": "yes"}}}, "'schedule.triggers.on_drift' must be true or false"),
        ({"schedule": {"triggers": {"check_seconds": 0}}}, "'schedule.triggers.check_seconds' must be between 1.0"),
    ],
)
def test_bad_drift_and_trigger_settings_name_the_key(tmp_path, sections, expected):
    from modelops.core.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, **sections))
    assert expected in str(err.value)


def test_the_cli_exits_2_on_a_bad_drift_key(tmp_path):
    result = run_cli("--config", str(write_config(tmp_path, drift={"bins": 1000})), "drift")
    assert result.returncode == 2 and "'drift.bins' must be between 2 and 100" in result.stderr


def test_drift_says_so_when_nothing_with_a_reference_is_served(project):
    result = run_cli("--config", str(project.root / "config.json"), "drift", "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"reference_version": None, "batches": []}
