"""Scoring a file (``scripts/bench.py --score``): rows per second of ``retrain_pipeline.py score`` and of
``POST /predict`` with a CSV body, beside a floor that only reads the same CSV and writes it back
(Python's ``csv`` module, no model) and the in-process signature on the same rows in the same chunks
(tensors made beforehand, after one warm-up call: the model's own cost) and serving alone (the same
chunks pre-encoded, posted as the command posts them: the least any REST client waits); and the command's
peak memory on generated files of growing size (up to 1 GB by default).

Two schemas: the packed demo (x1, x2) and a named-input one (the penguins SavedModel of
tests/localserving/saved_models.py: two categories and an optional float). Serving is the project's
local server on this machine (as in local mode), the frontend gunicorn with its defaults. The
command's rows/s is its own summary's (scoring, without Python's start-up), its wall time is shown
beside; the API's is the client's wall time for the whole request. Figures are medians over the rounds.
Peak memory is the command's maximum resident set (``ru_maxrss`` of a fresh parent that only waits for it).
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from harness import REPO
from harness.processes import Serving, frontend, wait_until
from harness.project import write_config

MODEL = "simple_classifier"
SUMMARY = re.compile(r"\(([0-9,]+) rows/s\)")
PEAK = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=False, stdout=subprocess.DEVNULL); " \
       "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"


def write_rows(path: Path, schema: str, rows: int, seed: int = 0) -> int:
    """A CSV of ``rows`` valid rows for ``schema`` (demo or named) with an id column; returns its bytes."""
    rng = random.Random(seed)
    with open(path, "w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        if schema == "demo":
            out.writerow(["id", "x1", "x2"])
            out.writerows([i, f"{rng.uniform(-3, 3):.4f}", f"{rng.uniform(-3, 3):.4f}"] for i in range(rows))
        else:
            out.writerow(["id", "island", "bill_length_mm", "sex"])
            out.writerows([i, rng.choice(("Biscoe", "Dream", "Torgersen")), f"{rng.uniform(30, 60):.1f}",
                           rng.choice(("female", "male", ""))] for i in range(rows))
    return path.stat().st_size


def floor_seconds(path: Path) -> float:
    started = time.perf_counter()
    with open(path, newline="") as f, open(os.devnull, "w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        for row in csv.reader(f):
            writer.writerow(row)
    return time.perf_counter() - started


def command(config: Path, tf_host: str, path: Path, out: str = os.devnull) -> tuple[float, float]:
    """``(scoring seconds, from the summary line's rows/s, and wall seconds of the process)``."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(REPO / "retrain_pipeline.py"), "--config", str(config), "score",
                           str(path), "-o", out], capture_output=True, text=True, env={**os.environ,
                                                                                         "TF_HOST": tf_host})
    wall = time.perf_counter() - started
    found = SUMMARY.search(done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"score failed ({done.returncode}): {done.stderr[-500:]}")
    rows = int(re.search(r"scored \d+ of (\d+) rows", done.stderr).group(1))  # type: ignore[union-attr]
    return rows / float(found.group(1).replace(",", "")), wall


def api_seconds(url: str, path: Path) -> float:
    body = path.read_bytes()
    started = time.perf_counter()
    r = requests.post(f"{url}/predict", data=body, headers={"Content-Type": "text/csv"}, timeout=600)
    seconds = time.perf_counter() - started
    if r.status_code != 200 or r.headers.get("X-Row-Errors") != "0":
        raise SystemExit(f"CSV /predict failed: {r.status_code} {r.text[:300]}")
    return seconds


def serving_seconds(url: str, path: Path, schema: str, chunk: int = 2000, in_flight: int = 2) -> float:
    """Serving alone: the same chunks, as the command sends them (columnar JSON, ``in_flight`` at once),
    encoded before the clock starts and answers not read: what any client over REST waits for at least."""
    from concurrent.futures import ThreadPoolExecutor

    with open(path, newline="") as f:
        rows = list(csv.reader(f))[1:]
    bodies = []
    for i in range(0, len(rows), chunk):
        part = rows[i:i + chunk]
        inputs = [[float(r[1]), float(r[2])] for r in part] if schema == "demo" else {
            "island": [r[1] for r in part], "sex": [r[3] for r in part],
            "bill_length_mm": [float(r[2]) if r[2] else float("nan") for r in part]}
        bodies.append(json.dumps({"inputs": inputs}).encode())
    sessions = [requests.Session() for _ in range(in_flight)]

    def post(i: int) -> None:
        r = sessions[i % in_flight].post(f"{url}/v1/models/{MODEL}:predict", data=bodies[i], timeout=60)
        if r.status_code != 200:
            raise SystemExit(f"serving failed: {r.status_code} {r.text[:300]}")

    post(0)  # warm
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        list(pool.map(post, range(len(bodies))))
    return time.perf_counter() - started


def signature_seconds(export: Path, path: Path, schema: str, chunk: int = 2000) -> float:
    """The SavedModel's serving signature in this process, on the same rows in the same chunks."""
    import numpy as np
    import tensorflow as tf

    signature = tf.saved_model.load(str(export)).signatures["serving_default"]
    with open(path, newline="") as f:
        rows = list(csv.reader(f))[1:]
    inputs = []  # the tensors are made before the clock starts: this is the model's own cost
    for i in range(0, len(rows), chunk):
        part = rows[i:i + chunk]
        if schema == "demo":
            inputs.append({"x": tf.constant(np.array([[float(r[1]), float(r[2])] for r in part], dtype=np.float32))})
        else:
            inputs.append({"island": tf.constant([r[1] for r in part]), "sex": tf.constant([r[3] for r in part]),
                           "bill_length_mm": tf.constant([float(r[2]) for r in part], dtype=tf.float32)})
    signature(**inputs[0])  # the first call traces
    started = time.perf_counter()
    for tensors in inputs:
        signature(**tensors)
    return time.perf_counter() - started


def peak_rss_mb(config: Path, tf_host: str, path: Path) -> float:
    args = [sys.executable, str(REPO / "retrain_pipeline.py"), "--config", str(config), "score", str(path),
            "-o", os.devnull]
    done = subprocess.run([sys.executable, "-c", PEAK, *args], capture_output=True, text=True,
                          env={**os.environ, "TF_HOST": tf_host}, check=True)
    return int(done.stdout.strip()) / 1024


def _project(work: Path, schema: str) -> tuple[Path, Path]:
    """A project folder serving version 1 of ``schema``'s model; returns (config.json, the export)."""
    work.mkdir()
    if schema == "demo":
        from modelops.trainer.model import network as model

        config = write_config(work)
        model.export(model.build(learning_rate=0.01, seed=0), work / "models" / "1")
    else:
        from tests.localserving.saved_models import PENGUINS_SCHEMA, penguins

        config = write_config(work, **PENGUINS_SCHEMA)
        penguins(work / "models" / "1")
    return config, work / "models" / "1"


def one_schema(work: Path, schema: str, rows: int, rounds: int) -> dict:
    config, export = _project(work, schema)
    data = work / "rows.csv"
    write_rows(data, schema, rows)
    server = Serving(work / "models", MODEL).wait_listening()
    try:
        wait_until(lambda: requests.get(f"{server.url}/v1/models/{MODEL}", timeout=5).ok, seconds=120,
                   what="serving")
        with frontend(server.url, MODEL, config, work) as url:
            wait_until(lambda: requests.get(f"{url}/readyz", timeout=10).status_code == 200, seconds=90,
                       what="the frontend ready")
            floors, scoring, walls, api, alone = [], [], [], [], []
            for _ in range(rounds):
                floors.append(floor_seconds(data))
                alone.append(serving_seconds(server.url, data, schema))
                seconds, wall = command(config, server.url, data)
                scoring.append(seconds)
                walls.append(wall)
                api.append(api_seconds(url, data))
        signature = [signature_seconds(export, data, schema) for _ in range(rounds)]
        result = {"rows": rows, "bytes": data.stat().st_size}
        for name, values in (("floor", floors), ("command", scoring), ("command_wall", walls), ("api", api),
                             ("serving", alone), ("signature", signature)):
            result[f"{name}_rows_per_s"] = rows / statistics.median(values)
        result["command_vs_floor"] = result["command_rows_per_s"] / result["floor_rows_per_s"]
        result["api_vs_floor"] = result["api_rows_per_s"] / result["floor_rows_per_s"]
        result["serving_vs_floor"] = result["serving_rows_per_s"] / result["floor_rows_per_s"]
        return result
    finally:
        server.stop()


def memory(work: Path, sizes_mb: list[int]) -> list[dict]:
    """The command's peak RSS on demo files of ``sizes_mb``, written once at the largest size and cut."""
    config, _export = _project(work, "demo")
    server = Serving(work / "models", MODEL).wait_listening()
    out = []
    try:
        wait_until(lambda: requests.get(f"{server.url}/v1/models/{MODEL}", timeout=5).ok, seconds=120,
                   what="serving")
        for size in sizes_mb:
            data = work / f"rows-{size}mb.csv"
            rows = size * 1024 * 1024 // 22  # about 22 bytes a demo row
            write_rows(data, "demo", rows)
            started = time.perf_counter()
            peak = peak_rss_mb(config, server.url, data)
            out.append({"mb": round(data.stat().st_size / 2**20), "rows": rows, "peak_rss_mb": round(peak, 1),
                        "rows_per_s": rows / (time.perf_counter() - started)})
            data.unlink()
            print(json.dumps(out[-1]), file=sys.stderr, flush=True)
    finally:
        server.stop()
    return out


def run(rows: int, rounds: int, sizes_mb: list[int]) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-score-") as tmp:
        work = Path(tmp)
        result = {"demo": one_schema(work / "demo", "demo", rows, rounds),
                  "named": one_schema(work / "named", "named", rows, rounds)}
        result["memory"] = memory(work / "memory", sizes_mb) if sizes_mb else []
    return result


def markdown(result: dict) -> str:
    lines = ["| schema | rows | csv floor rows/s | command rows/s (x floor) | command wall rows/s | "
             "CSV API rows/s (x floor) | serving alone rows/s (x floor) | in-process signature rows/s |",
             "|---|---|---|---|---|---|---|---|"]
    for schema, label in (("demo", "demo (x1, x2)"), ("named", "named (island, bill_length_mm, sex)")):
        r = result[schema]
        lines.append(f"| {label} | {r['rows']:,} | {r['floor_rows_per_s']:,.0f} | {r['command_rows_per_s']:,.0f} "
                     f"({r['command_vs_floor']:.2f}x) | {r['command_wall_rows_per_s']:,.0f} | "
                     f"{r['api_rows_per_s']:,.0f} ({r['api_vs_floor']:.2f}x) | {r['serving_rows_per_s']:,.0f} "
                     f"({r['serving_vs_floor']:.2f}x) | {r['signature_rows_per_s']:,.0f} |")
    if result.get("memory"):
        lines += ["", "| file | rows | command peak RSS | rows/s (wall) |", "|---|---|---|---|"]
        lines += [f"| {m['mb']:,} MB | {m['rows']:,} | {m['peak_rss_mb']:.0f} MB | {m['rows_per_s']:,.0f} |"
                  for m in result["memory"]]
    return "\n".join(lines)
