"""``scripts/bench.py --quick`` (as CI runs it) measures every case it promises, in one run;
``--write-docs`` puts its table into docs/performance.md."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest

from harness import REPO


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench", REPO / "scripts" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_write_docs_replaces_only_the_table_in_the_performance_doc(tmp_path):
    bench = _bench_module()
    assert bench.PERFORMANCE_DOC == REPO / "docs" / "performance.md"
    doc = shutil.copy(bench.PERFORMANCE_DOC, tmp_path / "performance.md")
    before = doc.read_text()
    bench.write_docs("| rows | clients |\n|---:|---:|\n| 1 | 1 |", doc)
    after = doc.read_text()
    head, tail = before.split(bench.TABLE_START)[0], before.split(bench.TABLE_END)[1]
    assert after.startswith(head) and after.endswith(tail), "text around the table is kept"
    assert "| 1 | 1 |" in after and "scripts/bench.py --write-docs" in after
    bench.write_docs("| 2 | 8 |", doc)
    assert "| 1 | 1 |" not in doc.read_text() and "| 2 | 8 |" in doc.read_text()


@pytest.mark.slow
def test_quick_bench_measures_every_path_batch_and_concurrency(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "bench.py"), "--quick", "--json", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    bench = json.loads(out.read_text())
    cases = {(r["target"], r["rows"], r["clients"], r["pace"]) for r in bench["latency"]}
    targets = {"in-process signature (floor)", "serving, direct REST", "frontend /predict"}
    back_to_back = {(t, rows, clients, 0) for t in targets for rows in (1, 100) for clients in (1, 8)}
    assert cases == back_to_back | {(t, 1, 1, 100) for t in targets}
    for row in bench["latency"]:
        if row["pace"]:  # a paced client cannot exceed its rate
            assert row["rps"] <= row["pace"] * 1.05, row
    for row in bench["latency"]:
        assert row["requests"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"] and row["rps"] > 0, row
    assert len(bench["retrain_seconds"]) == 1 and bench["retrain_seconds"][0] > 0
    assert bench["promotion_to_answer_seconds"] and all(0 < t < 30 for t in bench["promotion_to_answer_seconds"])
    warmup = bench["first_100_after_promotion"]
    assert set(warmup) == {"with warmup", "without warmup"}
    assert all(f["first_ms"] > 0 and f["p99_ms"] > 0 for f in warmup.values()), warmup
    assert [r["shadow_fraction"] for r in bench["shadow"]] == [0.0, 0.1, 1.0]
    assert all(r["requests"] > 0 and r["p50_ms"] > 0 for r in bench["shadow"])
    assert "| rows | clients | load | path |" in result.stdout and "p50 vs floor" in result.stdout


def test_data_window_bench_times_one_batch_against_many(tmp_path):
    out = tmp_path / "window.json"
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "bench.py"), "--data-window", "--batches", "3",
                             "--batch-rows", "1000", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    bench = json.loads(out.read_text())
    assert (bench["one"]["batches_used"], bench["all"]["batches_used"]) == (1, 3)
    for case in ("one", "all"):
        assert bench[case]["train_seconds"] > 0 and bench[case]["total_seconds"] >= bench[case]["train_seconds"]
    assert bench["ratio"] > 0 and bench["load_and_split_every_batch_seconds"] >= 0


def test_frontend_bench_says_which_tools_are_missing():
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "bench.py"), "--frontend"], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PATH": "/nonexistent"})
    assert result.returncode != 0
    assert "needs haproxy wrk on PATH" in result.stderr and "apt-get install -y haproxy wrk" in result.stderr


@pytest.mark.slow
def test_frontend_bench_measures_the_ceiling_and_cpu_per_request_beside_an_older_commit(tmp_path):
    out = tmp_path / "frontend.json"
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "bench.py"), "--frontend", "--old-ref", "HEAD",
                             "--rounds", "1", "--seconds", "1", "--json", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    bench = json.loads(out.read_text())
    cases = {(r["upstream"], r["target"], r["connections"]) for r in bench["rows"]}
    targets = {"direct", "frontend (old)", "frontend (new)"}
    assert cases == {(u, t, c) for u in ("haproxy", "serving") for t in targets for c in (1, 8)}
    for row in bench["rows"]:
        assert row["requests"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"] and row["rps"] > 0, row
        if row["target"] != "direct":
            assert 0 <= row["kernel_ms_per_request"] <= row["cpu_ms_per_request"] and row["cpu_ms_per_request"] > 0, row
    assert set(bench["worker_rss_mb"]) == {"frontend (old)", "frontend (new)"}
    assert "CPU ms/request" in result.stdout and "new / old" in result.stdout
