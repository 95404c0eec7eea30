#!/usr/bin/env python3
"""Benchmarks, side by side in one run: the in-process SavedModel signature call (the floor),
the local serving server directly, and the frontend (gunicorn) in front of it; each at 1 and 8
keep-alive clients and for batches of 1 and 100 rows; plus a default retrain's wall time, the
time from a promotion to the new version answering, the first 100 requests' latency after a
promotion with and without TF Serving warmup records in the export, and what shadow mirroring
(staged rollout) adds to a user's request over ``direct``.

Back-to-back clients keep every process hot. A paced case (one client sending 100 requests a
second, as real callers do) shows the latency when each process wakes from idle per request,
which on a small VM costs more than the work itself.

    .venv/bin/python scripts/bench.py [--quick] [--json FILE] [--write-docs]
    .venv/bin/python scripts/bench.py --data-window [--batches 52] [--batch-rows 100000] [--json FILE]
    .venv/bin/python scripts/bench.py --live-drift [--rounds 5] [--quick] [--json FILE]
    .venv/bin/python scripts/bench.py --explain [--rounds 3] [--quick] [--json FILE]
    .venv/bin/python scripts/bench.py --score [--score-rows 100000] [--sizes-mb 10,100,1024] [--write-docs]

``--data-window`` measures only the weekly data cost instead: loading, de-duplication, split and
training at the default config, with one batch accepted and with ``--batches`` accepted (the
default window keeps the second within 2x the first), plus load + split of every batch at once.
``--live-drift`` measures only what the frontend's live drift window adds to a 1-row ``/predict``:
the same gunicorn frontend on a version with reference statistics (counting) and one without.

Each HTTP client is its own process holding one keep-alive connection, so the load generator's
GIL does not cap the figures (it still shares the 2 cores with the servers, as clients would).
Latencies are p50/p99 over all requests of a run; ratios compare with the floor and with direct
serving. ``--write-docs`` replaces the table in docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.measure import machine, p50_rounds  # noqa: E402
from harness.processes import Serving, frontend, wait_until  # noqa: E402
from harness.project import write_config  # noqa: E402

MODEL = "simple_classifier"
ROWS = {1: [[1.5, 2.3]], 100: [[i / 50.0, -i / 25.0] for i in range(100)]}
# (rows, clients, requests a second per client; 0: back to back)
CASES = [(1, 1, 0), (1, 8, 0), (100, 1, 0), (100, 8, 0), (1, 1, 100)]
# TensorFlow threads as the Procfile and docker-compose.yml run serving; the floor uses the same.
TF_THREADS = 1
PERFORMANCE_DOC = REPO / "docs" / "performance.md"
TABLE_START, TABLE_END = "<!-- bench:start -->", "<!-- bench:end -->"
FRONTEND_MARKERS = ("<!-- bench-frontend:start -->", "<!-- bench-frontend:end -->")
SHADOW_FRACTIONS = (0.0, 0.1, 1.0)  # 0: rollout.mode direct, the baseline
SCORE_MARKERS = ("<!-- bench-score:start -->", "<!-- bench-score:end -->")


def _client(port: int, path: str, body: bytes, seconds: float, start_at: float, interval: float, out) -> None:
    """One keep-alive client process: POST until the deadline, every ``interval`` s (0: back to back);
    send back latencies or an error."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    try:
        for _ in range(20):  # warm the connection and the servers' caches
            conn.request("POST", path, body, headers)
            conn.getresponse().read()
        time.sleep(max(0.0, start_at - time.time()))
        latencies, failures = [], 0
        deadline = time.perf_counter() + seconds
        while (now := time.perf_counter()) < deadline:
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            response.read()
            latencies.append(time.perf_counter() - now)
            failures += response.status != 200
            _pace(now, interval)
        out.put((latencies, failures))
    except OSError as exc:
        out.put(([], repr(exc)))


def _pace(started: float, interval: float) -> None:
    time.sleep(max(0.0, started + interval - time.perf_counter()))


def summarise(latencies: list[float], seconds: float) -> dict:
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1e3, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3, 3),
        "rps": round(len(ordered) / seconds, 1),
    }


def http_load(url: str, path: str, rows: int, clients: int, seconds: float, interval: float,
              extra: dict | None = None) -> dict:
    port = int(url.rsplit(":", 1)[1])
    body = json.dumps({"instances": ROWS[rows], **(extra or {})}).encode()
    ctx = multiprocessing.get_context("spawn")  # this process has TensorFlow loaded: never fork it
    out = ctx.Queue()
    start_at = time.time() + 2.0 + 0.3 * clients
    args = (port, path, body, seconds, start_at, interval, out)
    procs = [ctx.Process(target=_client, args=args) for _ in range(clients)]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    failures = [f for _, f in results if f]
    if failures:
        raise SystemExit(f"{url}{path}: failed requests: {failures}")
    return summarise([t for lat, _ in results for t in lat], seconds)


def floor_load(signature, rows: int, clients: int, seconds: float, interval: float) -> dict:
    """The in-process signature call (serving's own, on the same session settings) from ``clients``
    threads: what no server can beat."""
    import numpy as np

    from modelops.trainer.model import network as model

    x = np.asarray(ROWS[rows], dtype=np.float32)
    for _ in range(50):
        model.predict(signature, x)
    per_thread: list[list[float]] = [[] for _ in range(clients)]
    deadline = time.perf_counter() + seconds

    def loop(out: list[float]) -> None:
        while (now := time.perf_counter()) < deadline:
            model.predict(signature, x)
            out.append(time.perf_counter() - now)
            _pace(now, interval)

    threads = [threading.Thread(target=loop, args=(out,)) for out in per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return summarise([t for out in per_thread for t in out], seconds)


def retrain_seconds(work: Path, runs: int) -> list[float]:
    """Wall time of ``python retrain_pipeline.py`` with the default config, process start to publish."""
    times = []
    for i in range(runs):
        root = work / f"retrain-{i}"
        root.mkdir()
        config = write_config(root)  # the test helper shortens training: restore the defaults
        raw = json.loads(config.read_text())
        raw["train"] = json.loads((REPO / "config.json").read_text())["train"]
        raw["verify"]["unreachable_seconds"] = 0.0  # no serving here: measure up to the publish
        config.write_text(json.dumps(raw))
        start = time.perf_counter()
        result = subprocess.run([sys.executable, str(REPO / "retrain_pipeline.py"), "--config", str(config)],
                                capture_output=True, text=True, env={**os.environ, "TF_HOST": "http://127.0.0.1:9"})
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            raise SystemExit(f"retrain failed:\n{result.stdout}\n{result.stderr}")
    return times


def promotion_seconds(models: Path, candidates: list[Path], frontend_url: str, first_version: int) -> list[float]:
    """From the atomic rename of a new version to the frontend answering with it (1 s polling)."""
    import requests

    from modelops.core.store import ModelStore

    store, session, times = ModelStore(models), requests.Session(), []
    for i, candidate in enumerate(candidates):
        version = first_version + i
        time.sleep(0.37 * (i + 1))  # land the rename at different points of the poll cycle
        start = time.perf_counter()
        store.publish(candidate, version, {"version": version})
        wait_until(lambda v=version: session.post(f"{frontend_url}/predict", json={"instances": ROWS[1]},
                                                  timeout=10).headers.get("X-Model-Version") == str(v),
                   seconds=30, what=f"v{version} answering", interval=0.005)
        times.append(time.perf_counter() - start)
    return times


def shadow_overhead(work: Path, champion: Path, candidate: Path, seconds: float) -> list[dict]:
    """p50 of a 1-row ``/predict`` (one client, 100 req/s) in ``direct`` and during a shadow phase
    mirroring ``SHADOW_FRACTIONS`` of requests; serving runs from a model config file with both versions."""
    from modelops.core import history, rollout

    root = work / "shadow"
    models = root / "models"
    shutil.copytree(champion, models / "1")
    shutil.copytree(candidate, models / "2")
    (models / "models.config").write_text(rollout.serving_config(MODEL, str(models), [1, 2], {}))
    for event, phase in ((history.Event.ROLLOUT_START, "loading"), (history.Event.ROLLOUT_ADVANCE, "shadow")):
        history.append(root / "runs" / "history.jsonl", event, version=2, stable_version=1, phase=phase)
    serving = Serving(models, MODEL, f"--model_config_file={models / 'models.config'}",
                      f"--tensorflow_intra_op_parallelism={TF_THREADS}",
                      f"--tensorflow_inter_op_parallelism={TF_THREADS}").wait_listening()
    rows = []
    try:
        for fraction in SHADOW_FRACTIONS:
            mode = {"mode": "shadow", "shadow_fraction": fraction} if fraction else {"mode": "direct"}
            config = write_config(root, rollout=mode)
            with frontend(serving.url, MODEL, config, root, workers=2) as front:
                wait_until(lambda f=front: __import__("requests").get(f"{f}/readyz", timeout=5).ok, what="frontend")
                rows.append({"shadow_fraction": fraction, **http_load(front, "/predict", 1, 1, seconds, 0.01)})
    finally:
        serving.stop()
    return rows


def first_requests_after_promotion(work: Path, plain: Path, rounds: int) -> dict:
    """p99 and first latency of the first 100 one-row requests to a version just reported AVAILABLE,
    exported without and with warmup records (alternating, ``rounds`` each, medians reported)."""
    from modelops.trainer.model import network as model

    warm = work / "export-warm"
    shutil.copytree(plain, warm)
    model.write_warmup(warm, ROWS[100][:8])
    base = work / "warmup-models"
    shutil.copytree(plain, base / "1")
    serving = Serving(base, MODEL, f"--tensorflow_intra_op_parallelism={TF_THREADS}",
                      f"--tensorflow_inter_op_parallelism={TF_THREADS}", poll_seconds="0.2").wait_listening()
    port, body = serving.rest_port, json.dumps({"instances": ROWS[1]})
    figures: dict[str, list[tuple[float, float]]] = {"without warmup": [], "with warmup": []}
    try:
        for version in range(2, 2 + 2 * rounds):
            variant = "with warmup" if version % 2 else "without warmup"
            shutil.copytree(warm if version % 2 else plain, base / f".staging-{version}")
            (base / f".staging-{version}").rename(base / str(version))
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            wait_until(lambda v=version, c=conn: _available(c, v), seconds=60, what=f"v{version}", interval=0.002)
            latencies = []
            for _ in range(100):
                start = time.perf_counter()
                conn.request("POST", f"/v1/models/{MODEL}/versions/{version}:predict", body,
                             {"Content-Type": "application/json"})
                conn.getresponse().read()
                latencies.append(time.perf_counter() - start)
            conn.close()
            figures[variant].append((latencies[0], summarise(latencies, 1.0)["p99_ms"] / 1e3))
    finally:
        serving.stop()
    return {variant: {"first_ms": round(statistics.median(f for f, _ in runs) * 1e3, 2),
                      "p99_ms": round(statistics.median(p for _, p in runs) * 1e3, 2), "rounds": len(runs)}
            for variant, runs in figures.items()}


def _available(conn: http.client.HTTPConnection, version: int) -> bool:
    conn.request("GET", f"/v1/models/{MODEL}/versions/{version}")
    reply = json.loads(conn.getresponse().read())
    return reply.get("model_version_status", [{}])[0].get("state") == "AVAILABLE"


def run(quick: bool) -> dict:
    import tensorflow as tf

    from modelops.core.signature import SERVING_SIGNATURE
    from modelops.savedmodel import load_servable
    from modelops.trainer.model import network as model

    seconds = 1.5 if quick else 5.0
    work = Path(tempfile.mkdtemp(prefix="modelops-bench-"))
    try:
        models = work / "models"
        exports = []
        for seed in range(4):
            exports.append(work / f"export-{seed}")
            model.export(model.build(learning_rate=0.01, seed=seed), exports[-1])
        shutil.copytree(exports[0], models / "1")
        threads = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=TF_THREADS,
                                           inter_op_parallelism_threads=TF_THREADS)
        signature = load_servable(1, exports[0], threads).signatures[SERVING_SIGNATURE]
        config = write_config(work)
        serving = Serving(models, MODEL, f"--tensorflow_intra_op_parallelism={TF_THREADS}",
                          f"--tensorflow_inter_op_parallelism={TF_THREADS}").wait_listening()
        rows = []
        try:
            with frontend(serving.url, MODEL, config, work, workers=2) as front:
                wait_until(lambda: __import__("requests").get(f"{front}/readyz", timeout=5).ok, what="frontend ready")
                for batch, clients, rate in CASES:
                    case, interval = {"rows": batch, "clients": clients, "pace": rate}, 1 / rate if rate else 0.0
                    rows.append({**case, "target": "in-process signature (floor)",
                                 **floor_load(signature, batch, clients, seconds, interval)})
                    rows.append({**case, "target": "serving, direct REST", **http_load(
                        serving.url, f"/v1/models/{MODEL}:predict", batch, clients, seconds, interval)})
                    rows.append({**case, "target": "frontend /predict",
                                 **http_load(front, "/predict", batch, clients, seconds, interval)})
                promotion = promotion_seconds(models, exports[1:2] if quick else exports[1:], front, 2)
        finally:
            serving.stop()
        warmup = first_requests_after_promotion(work, exports[0], 1 if quick else 5)
        shadow = shadow_overhead(work, exports[0], exports[1], seconds)
        retrain = retrain_seconds(work, 1 if quick else 3)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "machine": machine(),
        "quick": quick,
        "seconds_per_case": seconds,
        "latency": rows,
        "retrain_seconds": [round(t, 2) for t in retrain],
        "promotion_to_answer_seconds": [round(t, 3) for t in promotion],
        "first_100_after_promotion": warmup,
        "shadow": shadow,
    }


def data_window(batches: int, batch_rows: int) -> dict:
    """Seconds for load + de-dup + split + training at the default config: one batch vs ``batches``."""
    import numpy as np

    from modelops.core.config import load_config
    from modelops.trainer.data import holdout, inbox, layout, synthetic, windowed
    from modelops.trainer.model import network as model
    from modelops.trainer.model import training as train

    work = Path(tempfile.mkdtemp(prefix="modelops-bench-data-"))
    try:
        roots = {"one": work / "one", "all": work / "all"}
        for n, root in zip((1, batches), roots.values(), strict=True):
            root.mkdir()
            config = load_config(_default_config(root))
            for i in range(batches - n, batches):  # the same newest batch in both
                synthetic.write_batch(layout.incoming_dir(config) / f"week-{i:03d}.csv",
                                      *synthetic.synthetic(batch_rows, seed=i))
            inbox.ingest(config)  # week by week in real life: not part of a retrain
        model.build(0.01, 0).fit(np.zeros((64, 2)), np.zeros(64), epochs=1, verbose=0)  # TF warm-up
        result = {"batches": batches, "batch_rows": batch_rows}
        for name, root in roots.items():
            result[name] = _timed_retrain_data(load_config(root / "config.json"), train)
        every = load_config(root / "config.json")
        window = dataclasses.replace(every.data.window, max_batches=batches, max_rows=batches * batch_rows)
        every = dataclasses.replace(every, data=dataclasses.replace(every.data, window=window))
        start = time.perf_counter()
        holdout.split(windowed.load_dataset(every), every.data.eval_percent, holdout.split_key(every))
        result["load_and_split_every_batch_seconds"] = round(time.perf_counter() - start, 2)
        result["ratio"] = round(result["all"]["total_seconds"] / result["one"]["total_seconds"], 2)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _default_config(root: Path) -> Path:
    """The repo's config.json as shipped, with no settle wait (the batches here are complete)."""
    raw = json.loads((REPO / "config.json").read_text())
    raw["data"]["settle_seconds"] = 0
    path = root / "config.json"
    path.write_text(json.dumps(raw))
    return path


def _timed_retrain_data(config, train) -> dict:
    from modelops.trainer.data import holdout, windowed

    start = time.perf_counter()
    dataset = windowed.load_dataset(config)
    loaded = time.perf_counter()
    split = holdout.split(dataset, config.data.eval_percent, holdout.split_key(config))
    split_done = time.perf_counter()
    train.train_candidate(config.train, split, config.runs_dir / "candidate")
    end = time.perf_counter()
    return {"rows": len(dataset), "batches_used": len(dataset.files), "left_out": len(dataset.left_out),
            "load_dedup_seconds": round(loaded - start, 2), "split_seconds": round(split_done - loaded, 2),
            "train_seconds": round(end - split_done, 2), "total_seconds": round(end - start, 2)}


def live_drift_overhead(seconds: float, rounds: int) -> dict:
    """p50 of a 1-row ``/predict`` through gunicorn (2 workers) with the live drift window counting (the
    served version's metrics.json has a reference) and without (one without): two frontends side by side
    on one serving, measured in alternating rounds; medians."""
    from modelops.core.config import load_config
    from modelops.core.store import ModelStore
    from modelops.trainer import drift
    from modelops.trainer.data import synthetic
    from modelops.trainer.model import network as model

    p50s: dict[str, list[float]] = {"without": [], "with": []}
    with tempfile.TemporaryDirectory(prefix="modelops-bench-drift-") as scratch:
        work = Path(scratch)
        model.export(model.build(learning_rate=0.01, seed=0), work / "export")
        shutil.copytree(work / "export", work / "serving" / "1")
        config = load_config(write_config(work))
        x, y = synthetic.synthetic(2000, seed=1)
        reference = drift.reference(config.schema, drift.table(config.schema, x, y), config.drift.bins)
        roots = {}
        for name, extra in (("without", {}), ("with", {"reference": reference})):
            root = work / name
            (root / "candidate").mkdir(parents=True)
            ModelStore(root / "models").publish(root / "candidate", 1, {"version": 1, **extra})
            roots[name] = (write_config(root), root)
        with Serving(work / "serving", MODEL, f"--tensorflow_intra_op_parallelism={TF_THREADS}",
                     f"--tensorflow_inter_op_parallelism={TF_THREADS}") as serving, contextlib.ExitStack() as running:
            serving.wait_listening()  # both frontends at once, measured in turns: the same machine state
            fronts = {name: running.enter_context(frontend(serving.url, MODEL, config_path, root, workers=2))
                      for name, (config_path, root) in roots.items()}
            for front in fronts.values():
                wait_until(lambda f=front: __import__("requests").get(f"{f}/readyz", timeout=5).ok, what="frontend")
            for _ in range(rounds):
                for name, front in fronts.items():
                    p50s[name].append(http_load(front, "/predict", 1, 1, seconds, 0.0)["p50_ms"])
    result = p50_rounds(p50s, seconds, rounds)
    medians = result["median_p50_ms"]
    return {**result, "added_p50_ms": round(medians["with"] - medians["without"], 3)}


def markdown(result: dict) -> str:
    by_case: dict[tuple, dict] = {}
    for row in result["latency"]:
        by_case.setdefault((row["rows"], row["clients"], row["pace"]), {})[row["target"]] = row
    lines = [
        "| rows | clients | load | path | p50 ms | p99 ms | req/s | p50 vs floor | p50 vs direct | req/s vs direct |",
        "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for (rows, clients, pace), targets in by_case.items():
        load = f"{pace} req/s each" if pace else "back to back"
        floor, direct = targets["in-process signature (floor)"], targets["serving, direct REST"]
        for name, row in targets.items():
            lines.append(
                f"| {rows} | {clients} | {load} | {name} "
                f"| {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['rps']:.0f} "
                f"| +{row['p50_ms'] - floor['p50_ms']:.2f} ms | {_vs(row['p50_ms'] - direct['p50_ms'], 'ms')} "
                f"| {row['rps'] / direct['rps']:.2f}x |"
            )
    retrain, promo = result["retrain_seconds"], result["promotion_to_answer_seconds"]
    lines += [
        "",
        f"- Default retrain (`python retrain_pipeline.py`, process start to publish, 20 epochs on 2,000 rows): "
        f"median **{statistics.median(retrain):.1f} s** (runs: {', '.join(f'{t:.1f}' for t in retrain)}).",
        f"- Promotion (atomic rename) to the frontend answering with the new version, 1 s polling: "
        f"median **{statistics.median(promo):.2f} s** (runs: {', '.join(f'{t:.2f}' for t in promo)}).",
        "- First 100 one-row requests to a just-promoted version (serving, direct REST): "
        + "; ".join(f"{variant}: first {f['first_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms"
                    for variant, f in result["first_100_after_promotion"].items())
        + f" (median of {result['first_100_after_promotion']['with warmup']['rounds']} promotions each).",
        "- Shadow mirroring, 1-row `/predict`, one client at 100 req/s: p50 "
        + ", ".join(_shadow_cell(row, result["shadow"][0]) for row in result["shadow"]) + " (goal: under +0.2 ms).",
        f"- Machine: {result['machine']}; {result['seconds_per_case']:g} s per case, one run"
        + (" (--quick)." if result["quick"] else "."),
    ]
    return "\n".join(lines)


def _shadow_cell(row: dict, direct: dict) -> str:
    if not row["shadow_fraction"]:
        return f"direct **{row['p50_ms']:.2f} ms**"
    return (f"mirroring {row['shadow_fraction']:.0%} **{row['p50_ms']:.2f} ms** "
            f"({_vs(row['p50_ms'] - direct['p50_ms'], 'ms')})")


def _vs(delta: float, unit: str) -> str:
    return "—" if abs(delta) < 1e-9 else f"{delta:+.2f} {unit}"


def write_docs(table: str, doc: Path = PERFORMANCE_DOC, markers: tuple[str, str] = (TABLE_START, TABLE_END),
               command: str = "scripts/bench.py --write-docs") -> None:
    """Replace the block between ``markers`` in ``doc`` with ``table``; keep the rest."""
    start, end = markers
    head, rest = doc.read_text().split(start, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(f"{head}{start}\nMeasured by `.venv/bin/python {command}`:\n\n{table}\n{end}{tail}")


def frontend_ceiling(args) -> int:
    from scripts import bench_frontend

    result = bench_frontend.run(args.seconds, args.rounds, args.old_ref)
    table = bench_frontend.markdown(result)
    print(table)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.write_docs:
        command = f"scripts/bench.py --frontend{f' --old-ref {args.old_ref}' if args.old_ref else ''} --write-docs"
        write_docs(table, markers=FRONTEND_MARKERS, command=command)
    return 0


def score_files(args) -> int:
    from scripts import bench_score

    sizes = [int(size) for size in args.sizes_mb.split(",") if size]
    result = bench_score.run(args.score_rows, args.rounds, sizes)
    table = bench_score.markdown(result)
    print(table)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.write_docs:
        write_docs(table, markers=SCORE_MARKERS, command=f"scripts/bench.py --score --sizes-mb {args.sizes_mb} "
                                                         "--write-docs")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (CI): 1.5 s per case, one retrain")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--write-docs", action="store_true", help="replace the table in docs/performance.md")
    parser.add_argument("--data-window", action="store_true",
                        help="only the weekly data cost: one accepted batch vs --batches of them")
    parser.add_argument("--batches", type=int, default=52)
    parser.add_argument("--batch-rows", type=int, default=100_000)
    parser.add_argument("--frontend", action="store_true",
                        help="only the frontend's own ceiling and CPU per request (needs haproxy and wrk)")
    parser.add_argument("--old-ref", help="with --frontend: also run this git commit's code, side by side")
    parser.add_argument("--live-drift", action="store_true",
                        help="only what live drift counting adds to a 1-row /predict (p50, with vs without)")
    parser.add_argument("--explain", action="store_true",
                        help="only an explain request's p50 vs a plain predict's (local server, frontend)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="with --frontend or --live-drift: alternating rounds (medians)")
    parser.add_argument("--seconds", type=float, default=5.0, help="with --frontend: seconds per wrk run")
    parser.add_argument("--score", action="store_true",
                        help="only scoring a file: the command and CSV /predict vs a csv read+write floor, and "
                             "the command's peak memory on growing files (scripts/bench_score.py)")
    parser.add_argument("--score-rows", type=int, default=100_000)
    parser.add_argument("--sizes-mb", default="10,100,1024", help="with --score: file sizes for peak memory")
    args = parser.parse_args()
    if args.score:
        return score_files(args)
    if args.frontend:
        return frontend_ceiling(args)
    if args.explain:
        from scripts.bench_explain import explain_overhead

        result = explain_overhead(http_load, MODEL, TF_THREADS, 1.5 if args.quick else 5.0, args.rounds)
        print(json.dumps(result, indent=2))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return 0
    if args.live_drift:
        result = live_drift_overhead(1.5 if args.quick else 5.0, args.rounds)
        print(json.dumps(result, indent=2))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return 0
    if args.data_window:
        result = data_window(args.batches, args.batch_rows)
        print(json.dumps(result, indent=2))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
        return 0
    result = run(args.quick)
    table = markdown(result)
    print(table)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.write_docs:
        write_docs(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
