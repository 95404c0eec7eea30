"""``scripts/bench.py --quick`` (as CI runs it) measures every case it promises, in one run."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


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
    assert [r["shadow_fraction"] for r in bench["shadow"]] == [0.0, 0.1, 1.0]
    assert all(r["requests"] > 0 and r["p50_ms"] > 0 for r in bench["shadow"])
    assert "| rows | clients | load | path |" in result.stdout and "p50 vs floor" in result.stdout
