"""``retrain_pipeline.py compare A B`` and the comparison the trainer stores after a promotion:
real versions on the local server, identical versions, a deliberately different version, a
version serving has not loaded, bad input files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from prometheus_client import CollectorRegistry

from harness.processes import Service, Serving, wait_until
from harness.project import write_config
from harness.servers import free_port
from modelops.core import importance
from modelops.core.config import load_config
from modelops.core.store import ModelStore
from modelops.core.tfserving_client import ServingClient
from modelops.trainer import cli, compare, rollout_control
from modelops.trainer.data import holdout, synthetic, windowed
from modelops.trainer.model import explain
from modelops.trainer.retrain import run
from modelops.trainer.retrain.runlog import RunLog
from modelops.web import create_app
from tests.conftest import quiet, run_cli


def compare_cli(config, url: str, *args: str) -> subprocess.CompletedProcess:
    """``retrain_pipeline.py compare ...`` as a user runs it, against TF Serving at ``url``."""
    return run_cli("--config", str(config.root / "config.json"), "compare", *args,
                   env={**os.environ, "TF_HOST": url})


def loaded(url: str, model_name: str) -> set[int]:
    entries = ServingClient(url, model_name).status()
    return {int(e["version"]) for e in entries if e.get("state") == "AVAILABLE"}


def eval_rows(config) -> int:
    return len(holdout.split(windowed.load_dataset(config), config.data.eval_percent, holdout.split_key(config)).y_eval)


@pytest.fixture(scope="module")
def one_loaded(_trained_template, tmp_path_factory):
    """The session's trained project (v1) on the local server with its default policy."""
    root = tmp_path_factory.mktemp("one") / "project"
    shutil.copytree(_trained_template, root)
    config = load_config(root / "config.json")
    service = Serving(config.models_dir, config.model_name).wait_listening()
    yield config, service.url
    service.stop()


@pytest.fixture(scope="module")
def two_versions(_trained_template, tmp_path_factory):
    """v1, and a v2 made deliberately different: trained with a batch whose class boundary is
    moved by 2 and published past the gate."""
    root = tmp_path_factory.mktemp("two") / "project"
    shutil.copytree(_trained_template, root)
    config = load_config(root / "config.json")
    synthetic.simulate(config, 2000, noise=0.0, shift=2.0, seed=3)
    candidate = run.train_only(config, echo=quiet)
    store = ModelStore(config.models_dir)
    lineage = {**store.metrics(1)["lineage"], "dataset_fingerprint": "0" * 16, "parent_version": 1}
    split = holdout.split(windowed.load_dataset(config), config.data.eval_percent, holdout.split_key(config))
    reasons = importance.record(explain.importance(candidate, config.schema, split.x_eval, split.text_eval))
    store.publish(candidate, store.reserve_version(), {"version": 2, "test_accuracy_percent": 80.0,
                                                       "lineage": lineage, "explanations": reasons})
    return config


# --- through serving ---


@pytest.mark.slow
def test_identical_versions_agree_on_every_row(one_loaded, tmp_path):
    config, url = one_loaded
    result = compare_cli(config, url, "served", "1", "--rows", "100", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["a"]["version"], report["b"]["version"]) == (1, 1)
    assert report["rows"] == 100
    assert report["class_agreement"] == 1.0
    assert report["mean_abs_diff"] == 0.0 and report["max_abs_diff"] == 0.0
    assert report["disagree_most"] == []
    assert report["a"]["accuracy_percent"] == report["b"]["accuracy_percent"] > 90
    assert report["lineage"] == {"unrecorded": [], "differences": []}
    assert report["reasons"] == {"unrecorded": [], "moved": []}  # a version's reasons did not move from its own
    for side in (report["a"], report["b"]):
        assert 0 < side["latency_ms"]["p50"] <= side["latency_ms"]["p99"]

    unlabelled = tmp_path / "rows.csv"
    unlabelled.write_text("x2,x1\n0.5,2.0\n-1,0.25\n3,3\n")
    result = compare_cli(config, url, "served", "served", "--input", str(unlabelled), "--max-diff", "0",
                         "--min-agreement", "1")
    assert result.returncode == 0, result.stderr
    assert "100.00% (0 of 3 rows differ)" in result.stdout
    assert "lineage           the same code, libraries, config, data and seed" in result.stdout
    assert "accuracy" not in result.stdout  # no labels: nothing to score


@pytest.mark.slow
def test_a_version_serving_has_not_loaded_is_named_with_what_is_loaded(one_loaded):
    config, url = one_loaded
    result = compare_cli(config, url, "served", "7")
    assert result.returncode == 2
    assert "v7 is not loaded" in result.stderr and "loaded: v1" in result.stderr
    assert "published versions: v1" in result.stderr
    assert "Traceback" not in result.stderr

    result = compare_cli(config, url)  # served vs previous, with nothing before v1
    assert result.returncode == 2
    assert "no version before the served v1" in result.stderr

    result = compare_cli(config, url, "served", "7", "--load")  # rollout.mode direct: --load is offered too
    assert result.returncode == 2
    assert "cannot load v7: it is not published" in result.stderr and ": v1" in result.stderr


@pytest.mark.slow
def test_a_promotion_stores_its_comparison_with_the_previous_version_and_the_page_shows_it(trained_project):
    config = trained_project
    service = Serving(config.models_dir, config.model_name).wait_listening()
    try:
        synthetic.simulate(config, 1000, noise=0.0, shift=0.0, seed=7)
        result = run_cli("--config", str(config.root / "config.json"), env={**os.environ, "TF_HOST": service.url})
        assert result.returncode == 0, result.stdout + result.stderr
        assert "compare: v2 vs v1: class agreement" in result.stdout

        stored = ModelStore(config.models_dir).metrics(2)["comparison"]
        assert (stored["a"]["version"], stored["b"]["version"]) == (2, 1)
        assert stored["rows"] == eval_rows(config)  # the gate's eval rows, all of them
        assert 0.9 < stored["class_agreement"] <= 1.0
        assert stored["a"]["accuracy_percent"] == ModelStore(config.models_dir).metrics(2)["test_accuracy_percent"]

        app = create_app({"TESTING": True, "MODELOPS_CONFIG": config.root / "config.json", "TF_HOST": service.url,
                          "MODEL_NAME": config.model_name, "METRICS_REGISTRY": CollectorRegistry()})
        wait_until(lambda: loaded(service.url, config.model_name) == {2}, what="serving v2 alone")
        page = app.test_client().get("/").get_data(as_text=True)
        assert "Version 2 compared with version 1" in page
        assert f"same class on <strong>{100 * stored['class_agreement']:.2f}%</strong>" in page

        # serving has unloaded v1, so comparing through it says so
        result = compare_cli(config, service.url)
        assert result.returncode == 2
        assert "v1 is not loaded" in result.stderr and "loaded: v2" in result.stderr
    finally:
        service.stop()


# --- the trainer's comparison (in-process, the signature TF Serving runs) ---


@pytest.mark.slow
def test_a_deliberately_different_version_is_measured_as_different(two_versions, tmp_path):
    config = two_versions
    with RunLog(tmp_path / "log.txt", steps=1, echo=quiet) as log:
        result = compare.after_promotion(config, 2, log)
    assert ModelStore(config.models_dir).metrics(2)["comparison"] == result
    assert (result["a"]["version"], result["b"]["version"]) == (2, 1)
    assert result["class_agreement"] < 0.95
    assert result["max_abs_diff"] > 0.5
    worst = result["disagree_most"]
    assert len(worst) == compare.DEFAULT_SHOW
    assert [r["abs_diff"] for r in worst] == sorted((r["abs_diff"] for r in worst), reverse=True)
    assert worst[0]["abs_diff"] == result["max_abs_diff"]
    assert all((r["a"] >= 0.5) != (r["b"] >= 0.5) for r in worst)  # the top rows change class


@pytest.mark.slow
def test_a_comparison_that_cannot_be_made_never_fails_the_promotion(trained_project, tmp_path):
    config = trained_project
    store = ModelStore(config.models_dir)
    broken = tmp_path / "broken"
    broken.mkdir()
    store.publish(broken, store.reserve_version(), {"version": 2})  # no SavedModel inside
    with RunLog(tmp_path / "log.txt", steps=1, echo=quiet) as log:
        assert compare.after_promotion(config, 2, log) is None
    assert "no comparison of v2 with the previous version" in (tmp_path / "log.txt").read_text()
    assert "comparison" not in store.metrics(2)


# --- two versions loaded at once (a model config file) ---


@pytest.fixture(scope="module")
def both_loaded(two_versions):
    """Serving with v1 and v2 loaded side by side, from a model config file."""
    config = two_versions
    model_config = config.root / "models.config"
    model_config.write_text(
        "model_config_list {\n  config {\n"
        f'    name: "{config.model_name}"\n    base_path: "{config.models_dir}"\n'
        '    model_platform: "tensorflow"\n'
        "    model_version_policy { specific { versions: 1 versions: 2 } }\n  }\n}\n"
    )
    port = free_port()
    service = Service([sys.executable, "-m", "modelops.localserving", "--port", "0", "--rest_api_port", str(port),
                       "--model_config_file", str(model_config)])
    url = f"http://127.0.0.1:{port}"
    try:
        service.wait_port(port)
        wait_until(lambda: loaded(url, config.model_name) == {1, 2}, what="v1 and v2 loaded")
        yield config, url
    finally:
        service.stop()


@pytest.mark.slow
def test_two_real_versions_compared_through_serving_match_the_in_process_scores(both_loaded):
    config, url = both_loaded
    result = compare_cli(config, url, "--json", "--show", "3")  # defaults: served (v2) vs previous (v1)
    assert result.returncode == 0, result.stderr
    served = json.loads(result.stdout)
    assert (served["a"]["version"], served["b"]["version"]) == (2, 1)
    assert served["rows"] == min(compare.DEFAULT_ROWS, eval_rows(config))
    assert len(served["disagree_most"]) == 3
    rows = compare.held_out_rows(config)
    in_process = compare.summarize((2, 1), ("served", "previous"), rows,
                                   [(compare._in_process(ModelStore(config.models_dir).path(v), rows), None)
                                    for v in (2, 1)])
    assert served["class_agreement"] == in_process["class_agreement"] < 0.95
    assert served["mean_abs_diff"] == pytest.approx(in_process["mean_abs_diff"], abs=1e-4)
    v1 = ModelStore(config.models_dir).metrics(1)["lineage"]
    assert served["lineage"]["differences"] == [
        {"key": "dataset_fingerprint", "a": "0" * 16, "b": v1["dataset_fingerprint"]},
        {"key": "parent_version", "a": 1, "b": None},
    ]
    shares = [ModelStore(config.models_dir).metrics(v)["explanations"]["share"] for v in (2, 1)]
    top = max(shares[0], key=lambda name: abs(shares[0][name] - shares[1][name]))
    assert served["reasons"]["moved"][0] == {"feature": top, "a": shares[0][top], "b": shares[1][top],
                                             "shift": round(shares[0][top] - shares[1][top], 6)}
    assert abs(served["reasons"]["moved"][0]["shift"]) > 0.01  # a moved boundary moves the reasons
    text = compare_cli(config, url, "--rows", "20").stdout
    assert f"importance moved most (v1 -> v2):\n    '{top}' {shares[1][top]:.0%} -> {shares[0][top]:.0%}" in text
    assert f"lineage differs:\n    dataset_fingerprint: v2 {'0' * 16}, v1 {v1['dataset_fingerprint']}" in text
    assert "parent_version: v2 1, v1 None" in text


@pytest.mark.slow
def test_bounds_turn_the_comparison_into_a_gate(both_loaded):
    config, url = both_loaded
    crossed = compare_cli(config, url, "2", "1", "--min-agreement", "0.99", "--rows", "200")
    assert crossed.returncode == 3
    assert "BOUND CROSSED: class agreement" in crossed.stderr
    within = compare_cli(config, url, "2", "1", "--min-agreement", "0.5", "--max-diff", "0.9", "--rows", "200")
    assert within.returncode == 0, within.stderr


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["shadow", "direct"])
def test_load_lists_a_version_in_the_trainers_config_file_for_the_comparison_only(two_versions, tmp_path, mode):
    """Serving runs from the model config file the trainer writes in every rollout.mode (direct, the
    default, is local mode's), which serves v2 alone; --load adds v1 for one comparison, then the file
    is as before."""
    root = tmp_path / "project"
    shutil.copytree(two_versions.root, root)
    config = load_config(write_config(root, rollout={"mode": mode}))
    rollout_control.sync(config, ModelStore(config.models_dir))
    written = config.serving_config_path.read_text()
    service = Serving(config.models_dir, config.model_name, f"--model_config_file={config.serving_config_path}",
                      "--model_config_file_poll_wait_seconds=0.2").wait_listening()
    try:
        wait_until(lambda: loaded(service.url, config.model_name) == {2}, what="v2 alone loaded")
        refused = compare_cli(config, service.url, "served", "7", "--load")
        assert refused.returncode == 2 and "cannot load v7: it is not published" in refused.stderr
        assert "Traceback" not in refused.stderr

        result = compare_cli(config, service.url, "--load", "--json", "--rows", "100")  # served (v2) vs previous
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert (report["a"]["version"], report["b"]["version"]) == (2, 1)
        assert report["rows"] == 100 and report["class_agreement"] < 1.0  # v2 was trained on shifted data
        assert config.serving_config_path.read_text() == written
        wait_until(lambda: loaded(service.url, config.model_name) == {2}, what="v1 unloaded again")
    finally:
        service.stop()


# --- bad input ---


BAD_INPUTS = {
    "missing": (None, "cannot read --input"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "is not a CSV text file"),
    "empty": (b"", "empty file: expected a header 'x1,x2[,label]'"),
    "wrong header": (b"a,b\n1,2\n", "header must be the columns x1,x2[,label] (any order"),
    "header only": (b"x1,x2\n", "has 0 data rows"),
    "not a number": (b"x1,x2\n1,2\n1,abc\n", "line 3: x2 is not a number"),
    "not finite": (b"x1,x2,label\nnan,1,0\n", "line 2: x1 must be finite, got 'nan'"),
    "bad label": (b"x1,x2,label\n1,1,2\n", "line 2: label must be 0 or 1"),
    "ragged": (b"x1,x2\n1,2,3\n", "line 2: expected 2 fields, got 3"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_a_bad_input_file_is_a_clear_error_with_exit_2(project, tmp_path, monkeypatch, capsys, case):
    content, message = BAD_INPUTS[case]
    path = tmp_path / "rows.csv"
    if content is not None:
        path.write_bytes(content)
    monkeypatch.setenv("TF_HOST", f"http://127.0.0.1:{free_port()}")  # never asked: the file is checked first
    code = cli.main(["--config", str(project.root / "config.json"), "compare", "--input", str(path)])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.startswith(f"error: --input {path}") or err.startswith(f"error: cannot read --input {path}")
    assert message in err
    assert out == ""


def test_a_version_that_is_not_a_number_is_a_usage_error(project, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--config", str(project.root / "config.json"), "compare", "latest"])
    assert exit_.value.code == 2
    assert "give a number, 'served' or 'previous'" in capsys.readouterr().err
