"""A year in minutes (issue 12): 52 weekly retrains back to back, with the bad weeks a year brings.

Each week a batch arrives and a retrain runs, in-process (TensorFlow loads once) except one that
runs as cron runs it and is killed with SIGKILL mid-run. Along the way: a noisy batch the gate
must reject, a malformed, an oversized and a symlinked batch, a half-copied one renamed into
place a week later, a torn non-UTF-8 line in the history, and a drifted boundary from week 42 on.
The bootstrap batch is itself over the small byte cap (the trainer's own data is not judged by it).

After every week: the run reached a gate decision, recorded once under its run id, and judged
every batch that had arrived (a bad one is quarantined with its reason); the served version has
its promote record and a passing gate in its metrics; the training data stayed inside
``data.window``. Over the year: the noisy batch keeps the gate rejecting while it is in the window
and promotions resume once it has left; after the drift the loop learns the new boundary; the
damaged line is skipped and counted. The gate is the project's (97%), training the tests' 5 epochs.
Wall times per run are printed with the last-10 / first-10 ratio, not asserted (no timed assertions).
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time

import pytest

from harness import REPO
from harness.processes import wait_until
from harness.project import write_config
from modelops.core import history
from modelops.core.config import load_config
from modelops.core.history import Event, Outcome
from modelops.core.store import ModelStore
from modelops.trainer.data import layout, synthetic
from modelops.trainer.retrain import run
from tests.conftest import json_load, quiet, run_cli

pytestmark = [pytest.mark.drill, pytest.mark.slow]

WEEKS = 52
ROWS = 200  # a week's batch: 40 eval rows
WINDOW = {"max_batches": 8, "max_rows": 2000}
LIMITS = {"bootstrap_rows": 800, "max_batch_rows": 1000, "max_batch_bytes": 8192, "window": WINDOW}
NOISY, MALFORMED, OVERSIZED, SYMLINKED, HALF_COPIED, KILLED, DAMAGED, DRIFT = 6, 15, 19, 23, 27, 32, 36, 42
BAD = {  # week: (batch name, what its quarantine reason must mention)
    MALFORMED: (f"week-{MALFORMED}-stray-quote.csv", "line 2"),
    OVERSIZED: (f"week-{OVERSIZED}-oversized.csv", "max_batch_bytes"),
    SYMLINKED: (f"week-{SYMLINKED}-link.csv", "symbolic link"),
}
DECISIONS = {Event.PROMOTE, Event.REJECT, Event.FAILED}
TORN = b'{"time": "2026-06-01T02:00:00Z", "event": "prom\xff\xfe'  # power loss mid-append, and a bad byte


@pytest.fixture
def year(tmp_path, monkeypatch):
    """A fresh project with small batches, a small byte cap and a window of 8 batches."""
    monkeypatch.delenv("NOTIFY_WEBHOOK_URL", raising=False)
    (tmp_path / "project").mkdir()
    return load_config(write_config(tmp_path / "project", data=LIMITS))


def test_a_year_of_weekly_retrains_never_stalls_loses_a_record_or_serves_an_ungated_version(year, tmp_path, capsys):
    from modelops.trainer.model import training as train  # noqa: F401  (TensorFlow loads here, not inside week 1's time)

    seconds: dict[int, float] = {}
    outcomes: dict[int, str] = {}
    for week in range(1, WEEKS + 1):
        bad = _deliver(year, week, tmp_path)
        if week == DAMAGED:
            with year.history_path.open("ab") as fh:
                fh.write(TORN)
        if week == KILLED:
            _kill_mid_run(year)
            outcomes[week] = "killed"
        else:
            before = len(history.read(year.history_path))
            started = time.monotonic()
            result = run.retrain(year, echo=quiet)
            seconds[week] = time.monotonic() - started
            outcomes[week] = result.outcome
            _check_week(year, week, result, history.read(year.history_path)[before:], bad)
        _check_served(year)
    records = history.read(year.history_path)
    assert records.skipped == 1, "the torn line is skipped and counted"
    window = WINDOW["max_batches"]
    assert {outcomes[w] for w in range(NOISY, NOISY + window)} == {Outcome.REJECTED}, "the noisy batch is in the window"
    assert Outcome.PROMOTED in {outcomes[w] for w in range(NOISY + window, NOISY + window + 4)}, "... until it leaves"
    assert Outcome.PROMOTED in {outcomes[w] for w in range(DRIFT + window, WEEKS + 1)}, "the new boundary is learned"
    cli = run_cli("--config", str(year.root / "config.json"), "history", "--json", "--limit", "1000")
    assert cli.returncode == 0 and "1 damaged line" in cli.stderr, cli.stderr
    assert len(cli.stdout.splitlines()) == len(records)
    _report(seconds, outcomes, capsys)


def _deliver(config, week: int, outside) -> tuple[str, str] | None:
    """Drop this week's batches into incoming/; return the bad batch (name, reason word) if any."""
    inbox = layout.incoming_dir(config)
    inbox.mkdir(parents=True, exist_ok=True)
    if week == 1:
        return None  # nothing yet: the first run bootstraps
    if week == HALF_COPIED + 1:  # the copy finishes and is renamed into place, a week late
        partial = inbox / f"week-{HALF_COPIED}.csv.partial"
        partial.write_bytes(partial.read_bytes() + (outside / "rest.csv").read_bytes())
        partial.rename(inbox / f"week-{HALF_COPIED}.csv")
    noise = 0.5 if week == NOISY else 0.0
    shift = 0.4 if week >= DRIFT else 0.0
    synthetic.simulate(config, rows=ROWS, noise=noise, shift=shift, seed=week)
    if week == HALF_COPIED:
        whole = _csv(outside, ROWS, seed=1000 + week).splitlines(keepends=True)
        (inbox / f"week-{week}.csv.partial").write_bytes(b"".join(whole[:ROWS // 2]))
        (outside / "rest.csv").write_bytes(b"".join(whole[ROWS // 2:]))
    if week not in BAD:
        return None
    name, _ = BAD[week]
    if week == MALFORMED:
        header, *rows = _csv(outside, ROWS, seed=1000 + week).splitlines(keepends=True)
        (inbox / name).write_bytes(header + b'0.1,"0.2,1\r\n' + b"".join(rows))
    elif week == OVERSIZED:
        (inbox / name).write_bytes(_csv(outside, 3 * LIMITS["max_batch_bytes"] // 20, seed=1000 + week))
    else:
        _csv(outside, ROWS, seed=1000 + week)
        (inbox / name).symlink_to(outside / f"batch-{1000 + week}.csv")
    return BAD[week]


def _csv(outside, rows: int, seed: int) -> bytes:
    """A clean batch's bytes, written outside the project."""
    path = outside / f"batch-{seed}.csv"
    synthetic.write_batch(path, *synthetic.synthetic(rows, seed=seed))
    return path.read_bytes()


def _kill_mid_run(config) -> None:
    """Run the retrain as cron does and SIGKILL it once it has ingested and split the data."""
    served, log = ModelStore(config.models_dir).latest(), config.train_log_path
    log.unlink(missing_ok=True)
    before = len(history.read(config.history_path))
    env = {**os.environ, "TF_HOST": "http://127.0.0.1:9"}  # nothing listens there
    proc = subprocess.Popen([sys.executable, str(REPO / "retrain_pipeline.py"), "--config",
                             str(config.root / "config.json")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: log.is_file() and "] data: " in log.read_text(), seconds=60, what="the run past its data step")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert ModelStore(config.models_dir).latest() == served
    assert len(history.read(config.history_path)) == before, "a killed run records nothing"
    assert list(layout.accepted_dir(config).glob(f"sim-*-seed{KILLED}.csv")), "its batch was accepted before the kill"


def _check_week(config, week: int, result, new: list[dict], bad: tuple[str, str] | None) -> None:
    """The run reached a gate decision, recorded once under its run id (``new``: the records it
    appended), judged every batch that had arrived, and trained inside the window."""
    assert result.outcome in (Outcome.PROMOTED, Outcome.REJECTED), f"week {week}: {result.message}"
    run_id = config.train_log_path.read_text().split(" retrain ", 1)[1].split()[0]
    decisions = [r for r in new if r["event"] in DECISIONS]
    assert len(decisions) == 1 and decisions[0]["version"] == result.version, f"week {week}: {new}"
    assert {r["run_id"] for r in new} == {run_id}, f"week {week}: {new}"
    if bad is not None:
        name, word = bad
        reason = (layout.quarantine_dir(config) / f"{name}.reason.txt").read_text()
        assert (layout.quarantine_dir(config) / name).exists() and word in reason, reason
        assert decisions[0]["batches_quarantined"] == 1
    assert decisions[0]["batches_accepted"] == (2 if week == HALF_COPIED + 1 else 1 if week > 1 else 0)
    left = sorted(p.name for p in layout.incoming_dir(config).iterdir())
    assert left == ([f"week-{week}.csv.partial"] if week == HALF_COPIED else []), f"week {week}: {left}"
    if result.outcome == Outcome.PROMOTED:
        metrics = ModelStore(config.models_dir).metrics(result.version)
    else:
        metrics = json_load(config.runs_dir / f"{run_id}-v{result.version}" / "metrics.json")
    dataset = metrics["dataset"]
    assert len(dataset["files"]) <= WINDOW["max_batches"] and dataset["rows"] <= WINDOW["max_rows"]
    if week > WINDOW["max_batches"]:  # the window is full from here on: the same size every week
        assert len(dataset["files"]) == WINDOW["max_batches"], f"week {week}: {dataset}"
    if week == HALF_COPIED + 1:
        assert f"week-{HALF_COPIED}.csv" in dataset["files"]
    if week == KILLED + 1:
        assert any(f.endswith(f"-seed{KILLED}.csv") for f in dataset["files"]), "the killed run's batch is used"


def _check_served(config) -> None:
    """The served version (highest numeric directory) passed the gate and has its promote record."""
    store = ModelStore(config.models_dir)
    served = store.latest()
    if served is None:
        return
    promotes = [r for r in history.read(config.history_path) if r["event"] == Event.PROMOTE and r["version"] == served]
    assert len(promotes) == 1, f"v{served} is served without exactly one promote record"
    metrics = store.metrics(served)
    assert metrics is not None and metrics["gate"]["promote"] is True, f"v{served}: {metrics}"


def _report(seconds: dict[int, float], outcomes: dict[int, str], capsys) -> None:
    """Print the per-run wall times and the flatness ratio (team rule: no timed assertions)."""
    times = list(seconds.values())
    mean = statistics.mean(times[-10:]) / statistics.mean(times[:10])
    median = statistics.median(times[-10:]) / statistics.median(times[:10])
    counts = {str(o): list(outcomes.values()).count(o) for o in set(outcomes.values())}
    with capsys.disabled():
        print(f"\nyear drill: {len(times)} in-process runs in {sum(times):.1f}s, outcomes {counts}; "
              f"wall time of the last 10 runs / the first 10: mean {mean:.2f}, median {median:.2f}")
        print("week:seconds+outcome (P promoted, R rejected, K killed): "
              + " ".join(f"{w}:{seconds.get(w, 0):.1f}{str(o)[0].upper()}" for w, o in outcomes.items()))
