"""Time the gate's paired comparison at table size: 20,000 eval rows, five slices (docs/performance.md).

One comparison = the overall paired bootstrap plus every slice's (``gate.metric`` balanced
accuracy, 2000 seeded resamples each), as ``retrain/evaluation.judge`` runs them; and the same for a
number label (rmse, paired bootstrap of per-row squared errors). Seeded rows, so every run times
the same work; the median of ``--rounds`` runs is printed.

    .venv/bin/python scripts/bench_stats.py --rows 20000 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelops.core.config import GateConfig, SliceConfig  # noqa: E402
from modelops.trainer import (
    scoring,  # noqa: E402
    slices,  # noqa: E402
)


def classification(rows: int, seed: int = 0):
    """Three classes, a candidate right 80 % of the time and a champion 78 %, a region feature of five values."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, rows)
    candidate = np.where(rng.random(rows) < 0.8, truth, rng.integers(0, 3, rows))
    champion = np.where(rng.random(rows) < 0.78, truth, rng.integers(0, 3, rows))
    region = np.asarray([f"r{i}" for i in rng.integers(0, 5, rows)])
    return truth.astype(np.float32), candidate.astype(np.float32), champion.astype(np.float32), region


def numbers(rows: int, seed: int = 0):
    """A number label, a candidate with errors of sd 1.0 and a champion of sd 1.05, five regions."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(20, 5, rows)
    region = np.asarray([f"r{i}" for i in rng.integers(0, 5, rows)])
    return truth, truth + rng.normal(0, 1.0, rows), truth + rng.normal(0, 1.05, rows), region


def one_comparison(metric: str, truth, candidate, champion, region) -> float:
    gate = GateConfig(metric=metric, slices=(SliceConfig("region"),))
    start = time.perf_counter()
    scoring.paired(metric, truth, candidate, champion)
    slices.score(gate, {"region": region.tolist()}, truth.tolist(), candidate.tolist(), champion.tolist())
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--metric", default="balanced_accuracy")
    args = parser.parse_args()
    data = numbers(args.rows) if args.metric in ("rmse", "mae", "r2") else classification(args.rows)
    times = [one_comparison(args.metric, *data) for _ in range(args.rounds)]
    print(json.dumps({"rows": args.rows, "slices": 5, "metric": args.metric, "rounds": args.rounds,
                      "median_seconds": round(statistics.median(times), 3),
                      "all_seconds": [round(t, 3) for t in times]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
