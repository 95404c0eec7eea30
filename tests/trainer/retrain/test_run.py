"""The gated retrain end to end with real TensorFlow: promote, reject, crash, contend, roll back."""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from harness import REPO
from harness.project import write_config
from harness.servers import free_port
from modelops.core import history
from modelops.core.config import load_config
from modelops.core.store import ModelStore
from modelops.trainer import reproduce, signals
from modelops.trainer.data import layout, synthetic
from modelops.trainer.retrain import run
from tests.conftest import (
    assert_no_partial_version,
    export_unservable,
    json_load,
    quiet,
    run_cli,
)

pytestmark = pytest.mark.slow


def test_first_run_from_the_cli_bootstraps_gates_and_records(project):
    result = run_cli("--config", str(project.root / "config.json"))
    assert result.returncode == 0, result.stderr
    assert "[6/7] gate: PROMOTED v1" in result.stdout
    assert assert_no_partial_version(project.models_dir) == [1]
    metrics = json_load(project.models_dir / "1" / "metrics.json")
    assert metrics["test_accuracy_percent"] >= 97.0
    assert metrics["dataset"]["eval_rows"] >= project.gate.min_eval_rows
    assert metrics["champion"] is None
    assert {"training_loss", "trained_at", "promoted_at", "config"} <= metrics.keys()
    assert "PROMOTED" in project.notifications_path.read_text()
    [record] = history.read(project.history_path)
    assert record["event"] == "promote" and record["version"] == 1
    # Nothing can serve a first model before it exists: no false "unverified" alarm; the trainer service
    # verifies it once serving answers (tests/trainer/retrain/test_verify.py).
    assert "verification pending" in result.stdout
    log = project.train_log_path.read_text()
    assert "[1/7] ingest" in log and "[6/7] gate: PROMOTED v1" in log


def test_noisy_data_is_rejected_and_the_served_version_stays(trained_project):
    config = trained_project
    synthetic.simulate(config, rows=3000, noise=0.45, shift=0.0, seed=7)
    result = run.retrain(config, echo=quiet)
    assert (result.outcome, result.exit_code, result.version) == ("rejected", 3, 2)
    assert ModelStore(config.models_dir).versions() == [1], "a rejected candidate never appears in models/"
    assert not (config.models_dir / "2").exists()
    [run_dir] = config.runs_dir.glob("*-v2")
    assert (run_dir / "candidate" / "saved_model.pb").exists(), "kept for inspection outside the served path"
    record = history.read(config.history_path)[-1]
    assert record["event"] == "reject" and record["champion_version"] == 1
    assert record["accuracy_percent"] < 97.0
    assert "REJECTED" in config.notifications_path.read_text().splitlines()[-1]
    assert "v1 keeps serving" in config.notifications_path.read_text()


def test_clean_new_data_promotes_against_the_champion_on_the_same_rows(trained_project):
    config = trained_project
    synthetic.simulate(config, rows=500, noise=0.0, shift=0.0, seed=11)
    result = run.retrain(config, echo=quiet)
    assert result.outcome == "promoted", result.message
    assert assert_no_partial_version(config.models_dir) == [1, 2]
    metrics = json_load(config.models_dir / "2" / "metrics.json")
    assert metrics["champion"]["version"] == 1
    assert len(metrics["dataset"]["files"]) == 2
    comparison = metrics["gate"]["comparison"]
    assert comparison["rows"] == metrics["dataset"]["eval_rows"]
    assert comparison["champion_percent"] == metrics["champion"]["accuracy_percent"]
    lo, hi = comparison["ci95_percent"]
    assert lo <= comparison["difference_percent"] <= hi and 0 <= comparison["p_value"] <= 1
    assert history.read(config.history_path)[-1]["comparison"] == comparison, "the decision record carries it too"
    assert f"p={comparison['p_value']:.3g}" in config.train_log_path.read_text()
    lineage = metrics["lineage"]
    assert lineage["parent_version"] == 1 and lineage["dataset_files"] == metrics["dataset"]["files"]
    assert lineage["seed"] == config.train.seed and lineage["tensorflow"] and lineage["numpy"]
    assert "git_commit" in lineage["code_version"] or "package" in lineage["code_version"]
    kept = (config.models_dir / "2" / "config.json").read_text()
    assert kept == config.source_text and lineage["config_sha256"] == hashlib.sha256(kept.encode()).hexdigest()
    assert json_load(config.models_dir / "1" / "metrics.json")["lineage"]["parent_version"] is None


def test_a_barely_trained_candidate_is_rejected_by_the_paired_test(trained_project):
    """The floor is set low, so the comparison with the champion decides, on evidence."""
    config = load_config(write_config(trained_project.root, train={"epochs": 1, "learning_rate": 0.0001},
                                      gate={"min_accuracy_percent": 0.0}))
    result = run.retrain(config, echo=quiet)
    assert (result.outcome, result.exit_code) == ("rejected", 3)
    assert "significant regression" in result.message
    [run_dir] = config.runs_dir.glob("*-v2")
    comparison = json_load(run_dir / "metrics.json")["gate"]["comparison"]
    assert comparison["p_value"] < 0.05 and comparison["ci95_percent"][1] < 0
    assert comparison["champion_only_correct"] > comparison["candidate_only_correct"]
    assert history.read(config.history_path)[-1]["comparison"] == comparison
    again = reproduce.reproduce(config, 2, echo=quiet)  # a rejected candidate can be reproduced too
    assert again.within and again.recorded_percent == json_load(run_dir / "metrics.json")["test_accuracy_percent"]


def test_slices_are_scored_and_recorded_and_cover_every_eval_row(trained_project):
    config = load_config(write_config(trained_project.root, gate={"slices": [{"feature": "x1", "edges": [0.0, 1.0]}],
                                                                  "min_slice_rows": 30}))
    synthetic.simulate(config, rows=500, noise=0.0, shift=0.0, seed=11)
    result = run.retrain(config, echo=quiet)
    assert result.outcome == "promoted", result.message
    metrics = json_load(config.models_dir / "2" / "metrics.json")
    found = metrics["gate"]["slices"]
    assert [s["name"] for s in found] == ["x1 < 0", "0 <= x1 < 1", "x1 >= 1"]
    assert sum(s["rows"] for s in found) == metrics["dataset"]["eval_rows"]
    assert all(s["verdict"] in ("ok", "not judged (fewer than gate.min_slice_rows=30 rows)") for s in found)
    assert "slice 0 <= x1 < 1:" in config.train_log_path.read_text()


def test_a_served_version_tf_serving_cannot_run_does_not_block_a_working_one(trained_project):
    """Upgrading from the old export: v1 loads but cannot answer, so it is no champion to protect."""
    from modelops.trainer.model import network as model

    config = trained_project
    v1 = config.models_dir / "1"
    kept = (v1 / "metrics.json").read_bytes()
    shutil.rmtree(v1)
    export_unservable(model.build(learning_rate=0.01, seed=5), v1)
    (v1 / "metrics.json").write_bytes(kept)
    synthetic.simulate(config, rows=500, noise=0.0, shift=0.0, seed=11)
    result = run.retrain(config, echo=quiet)
    assert (result.outcome, result.version) == ("promoted", 2), result.message
    record = [r for r in history.read(config.history_path) if r["event"] == "promote"][-1]
    assert record["champion_version"] is None and record["champion_accuracy_percent"] is None
    assert record["threshold_percent"] == config.gate.min_accuracy_percent, "the floor decides"
    # TF's reason is recorded with TF Serving's status code; which variable TF names first is not fixed.
    reason = r"served v1 cannot answer \(FAILED_PRECONDITION: \S.*\): floor only"
    assert any(re.fullmatch(reason, r) for r in record["reasons"]), record["reasons"]
    assert "champion: served v1 cannot answer" in config.train_log_path.read_text()


def test_a_failed_step_publishes_nothing_and_is_recorded(trained_project, monkeypatch):
    def broken(*_a, **_k):
        raise RuntimeError("disk exploded")

    monkeypatch.setattr("modelops.trainer.model.training.train_candidate", broken)
    result = run.retrain(trained_project, echo=quiet, force=True)
    assert (result.outcome, result.exit_code) == ("failed", 1)
    assert "disk exploded" in result.message
    assert ModelStore(trained_project.models_dir).versions() == [1]
    assert history.read(trained_project.history_path)[-1]["event"] == "failed"
    assert "Traceback" in trained_project.train_log_path.read_text()


def test_a_stop_signal_tensorflow_turns_into_another_error_is_still_an_interruption(trained_project, monkeypatch):
    def training_interrupted_inside_tf_data(*_a, **_k):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises KeyboardInterrupt here
        except KeyboardInterrupt:  # what tf.data's generator plumbing can make of it
            raise TypeError("Incompatible dataset elements") from None

    monkeypatch.setattr("modelops.trainer.model.training.train_candidate", training_interrupted_inside_tf_data)
    with signals.interrupts():
        result = run.retrain(trained_project, echo=quiet, force=True)
    assert (result.outcome, result.exit_code) == ("failed", 1)
    assert result.message.startswith("interrupted (SIGINT/SIGTERM)")
    assert ModelStore(trained_project.models_dir).versions() == [1]
    assert "interrupted" in history.read(trained_project.history_path)[-1]["reasons"][0]
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN, "handlers restored after the block"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_promotion_whose_record_cannot_be_written_is_retired_and_the_run_fails_cleanly(trained_project):
    config = trained_project
    synthetic.simulate(config, rows=500, noise=0.0, shift=0.0, seed=11)
    config.history_path.unlink()
    config.history_path.symlink_to("/dev/full")  # the disk is full when the records are written
    result = run_cli("--config", str(config.root / "config.json"))
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert "v2 passed the gate but its promote record could not be written" in result.stderr
    assert "v2 was retired" in result.stderr
    store = ModelStore(config.models_dir)
    assert (store.versions(), store.retired()) == ([1], [2]), "never served without its record"
    assert "could not be recorded either" in config.notifications_path.read_text().splitlines()[-1]


def test_a_failing_notification_never_fails_a_run(trained_project, monkeypatch):
    config = trained_project
    monkeypatch.setenv("NOTIFY_WEBHOOK_URL", f"http://127.0.0.1:{free_port()}/hooks/dead")  # nothing listens
    config.notifications_path.unlink()
    config.notifications_path.mkdir()  # the log cannot be appended to
    synthetic.simulate(config, rows=500, noise=0.0, shift=0.0, seed=11)
    result = run.retrain(config, echo=quiet)
    assert result.outcome == "promoted", result.message
    assert history.read(config.history_path)[-1]["event"] == "promote"


def _start_retrain(config, *args):
    """A retrain as cron runs it, ``--force``d: these runs train again on the same data on purpose."""
    return subprocess.Popen(
        [sys.executable, str(REPO / "retrain_pipeline.py"), "--config", str(config.root / "config.json"),
         *(args or ("retrain",)), "--force"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_killed_while_publishing_leaves_no_partial_version(trained_project):
    config = trained_project
    proc = _start_retrain(config)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if any(p.name.startswith(".tmp-") for p in config.models_dir.iterdir()):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.0005)
    proc.wait(30)
    assert assert_no_partial_version(config.models_dir) in ([1], [1, 2])
    result = run.retrain(config, echo=quiet, force=True)
    assert result.outcome == "promoted"
    assert not [p for p in config.models_dir.iterdir() if p.name.startswith(".tmp-")], "stale temp dir cleaned"
    promoted = [r["version"] for r in history.read(config.history_path) if r["event"] == "promote"]
    assert sorted(promoted) == ModelStore(config.models_dir).versions(), "every served version has its record"


def test_a_version_published_by_a_run_killed_before_its_record_is_recorded_by_the_next_run(trained_project):
    """SIGKILL or power loss between the rename and the append: the next run writes the record
    from the version's metrics.json (it passed the gate), once."""
    config = trained_project
    store = ModelStore(config.models_dir)
    shutil.copytree(store.path(1), store.path(2))
    metrics = json_load(store.path(2) / "metrics.json")
    (store.path(2) / "metrics.json").write_text(json.dumps({**metrics, "version": 2, "run_id": "20260101T000000Z"}))
    synthetic.simulate(config, rows=300, noise=0.0, shift=0.0, seed=5)
    run.retrain(config, echo=quiet)
    run.retrain(config, echo=quiet, force=True)
    records = [r for r in history.read(config.history_path) if r["event"] == "promote" and r["version"] == 2]
    assert len(records) == 1 and records[0]["run_id"] == "20260101T000000Z"
    assert "stopped before writing its record" in records[0]["reasons"][-1]
    assert [r["version"] for r in history.read(config.history_path) if r["event"] == "promote"].count(1) == 1


def test_two_retrains_at_once_never_collide(trained_project):
    config = trained_project
    first, second = _start_retrain(config), _start_retrain(config)
    outs = [p.communicate(timeout=120) for p in (first, second)]
    codes = sorted(p.returncode for p in (first, second))
    assert codes == [0, 1], outs
    loser_err = next(err for (_, err), p in zip(outs, (first, second), strict=True) if p.returncode == 1)
    assert "another retrain or rollback is running" in loser_err and "--wait" in loser_err
    # with --wait, the second one queues behind the first and both publish distinct versions
    first = _start_retrain(config)
    while "pid" not in (config.models_dir / ".lock").read_text() and first.poll() is None:
        time.sleep(0.01)
    second = _start_retrain(config, "retrain", "--wait", "120")
    assert [p.wait(180) for p in (first, second)] == [0, 0]
    served = ModelStore(config.models_dir).versions()
    assert served[-1] == served[-2] + 1 and len(served) == 4, "both queued runs published, v1 + 3 runs"
    versions = [r["version"] for r in history.read(config.history_path) if r["event"] in ("promote", "reject")]
    assert len(versions) == len(set(versions)), "version numbers never repeat"
    assert_no_partial_version(config.models_dir)


def test_rollback_retires_the_top_version_and_records_it(trained_project):
    config = trained_project
    synthetic.simulate(config, rows=200, noise=0.0, shift=0.0, seed=3)
    assert run.retrain(config, echo=quiet).outcome == "promoted"
    result = run_cli("--config", str(config.root / "config.json"), "rollback", "--reason", "bad canary")
    assert result.returncode == 0, result.stderr
    assert "v1 is the served version again" in result.stdout
    assert ModelStore(config.models_dir).versions() == [1]
    record = history.read(config.history_path)[-1]
    assert (record["event"], record["version"], record["to_version"]) == ("rollback", 2, 1)
    again = run_cli("--config", str(config.root / "config.json"), "rollback")
    assert again.returncode == 1
    assert "nothing to roll back to" in again.stderr and "Traceback" not in again.stderr
    assert run.retrain(config, echo=quiet).version == 3, "the retired number is not reused"


def test_status_and_history_commands(trained_project):
    cfg = str(trained_project.root / "config.json")
    status = run_cli("--config", cfg, "status")
    assert status.returncode == 0
    assert "v1:" in status.stdout and "<- served" in status.stdout
    lineage = json_load(trained_project.models_dir / "1" / "metrics.json")["lineage"]
    assert f"tensorflow {lineage['tensorflow']}, data {lineage['dataset_fingerprint']}" in status.stdout
    assert "parent none" in status.stdout, "v1 had no champion"
    hist = run_cli("--config", cfg, "history", "--json")
    assert json.loads(hist.stdout.splitlines()[-1])["event"] == "promote"


def test_train_tf_trains_without_publishing(project):
    result = subprocess.run([sys.executable, str(REPO / "train_tf.py"), "--config", str(project.root / "config.json")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "not published" in result.stdout
    assert ModelStore(project.models_dir).versions() == []
    assert list(project.runs_dir.glob("*-train/candidate/saved_model.pb"))


def test_reproduce_retrains_a_version_from_its_lineage_within_tolerance(trained_project):
    config = trained_project
    before = sorted(p.name for p in config.runs_dir.iterdir())
    result = run_cli("--config", str(config.root / "config.json"), "reproduce", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    recorded = json_load(config.models_dir / "1" / "metrics.json")
    assert f"recorded {recorded['test_accuracy_percent']:.2f}%" in result.stdout and ": reproduced" in result.stdout
    assert f"on the same {recorded['dataset']['eval_rows']} eval rows" in result.stdout
    assert ModelStore(config.models_dir).versions() == [1], "nothing is published"
    assert sorted(p.name for p in config.runs_dir.iterdir()) == before, "the scratch folder is gone"
    assert len(history.read(config.history_path)) == 1, "nothing is recorded as a decision"


def test_reproduce_outside_the_tolerance_exits_3(trained_project):
    config = trained_project
    path = config.models_dir / "1" / "metrics.json"
    metrics = json_load(path)
    path.write_text(json.dumps({**metrics, "test_accuracy_percent": metrics["test_accuracy_percent"] - 5.0}))
    result = run_cli("--config", str(config.root / "config.json"), "reproduce", "1")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "NOT reproduced" in result.stdout


@pytest.mark.parametrize("damage", ["batch deleted", "metrics damaged", "config copy edited", "no such version"])
def test_reproduce_with_inputs_gone_exits_1_saying_which(trained_project, damage):
    config = trained_project
    version, expected = "1", ""
    if damage == "batch deleted":
        [batch] = json_load(config.models_dir / "1" / "metrics.json")["lineage"]["dataset_files"]
        (layout.accepted_dir(config) / batch).unlink()
        expected = f"{batch} no longer in"
    elif damage == "metrics damaged":
        (config.models_dir / "1" / "metrics.json").write_text('{"version": 1, "lineage": ')
        expected = "cannot be read"
    elif damage == "config copy edited":
        with (config.models_dir / "1" / "config.json").open("a") as fh:
            fh.write("\n")
        expected = "changed since training"
    else:
        version, expected = "7", "no version 7"
    result = run_cli("--config", str(config.root / "config.json"), "reproduce", version)
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr
