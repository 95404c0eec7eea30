#!/usr/bin/env python3
"""What the frontend costs: single-row predict latency and throughput, through the frontend
(gunicorn, production command) vs directly against the serving server, at 1 and 8 clients.

    .venv/bin/python scripts/bench_frontend.py [--seconds 10] [--tf-host URL]

Without ``--tf-host`` it exports a freshly built model to a temp dir and starts the project's
serving server (``python -m modelops.serving``) on a free port. Each client is its own process
holding one keep-alive connection, so the load generator's GIL does not cap the figures.
Targets: the frontend adds at most 1.5 ms at p50 (1 client) and keeps at least half the direct
throughput at 8 clients; the exit code is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
MODEL = os.environ.get("MODEL_NAME", "simple_classifier")
BODY = json.dumps({"instances": [[1.5, 2.3]]}).encode()
GUNICORN = ["gunicorn", "--config", "python:modelops.web.gunicorn_conf", "modelops.web:create_app()"]
MAX_P50_ADDED_MS = 1.5
MIN_THROUGHPUT_SHARE = 0.5


def _client(base_url: str, path: str, seconds: float, start_at: float, out) -> None:
    """One keep-alive client: POST until the deadline, send back the latencies in seconds."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Content-Type": "application/json"}
    for _ in range(20):  # warm the connection and the server's caches
        conn.request("POST", path, BODY, headers)
        conn.getresponse().read()
    latencies, failures = [], 0
    time.sleep(max(0.0, start_at - time.time()))
    deadline = time.perf_counter() + seconds
    while (now := time.perf_counter()) < deadline:
        conn.request("POST", path, BODY, headers)
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - now)
        failures += response.status != 200
    conn.close()
    out.put((latencies, failures))


def measure(base_url: str, path: str, clients: int, seconds: float) -> dict:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start_at = time.time() + 1.0 + 0.1 * clients
    procs = [ctx.Process(target=_client, args=(base_url, path, seconds, start_at, out)) for _ in range(clients)]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    latencies = sorted(x for lat, _ in results for x in lat)
    failures = sum(f for _, f in results)
    if failures or not latencies:
        raise SystemExit(f"{base_url}{path}: {failures} of {len(latencies)} requests failed")
    return {
        "clients": clients,
        "requests": len(latencies),
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "rps": len(latencies) / seconds,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, seconds: float = 120.0) -> None:
    parts = urlsplit(url)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args} exited with {proc.returncode}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
            conn.request("GET", parts.path)
            if b"AVAILABLE" in conn.getresponse().read() or parts.path == "/healthz":
                return
        time.sleep(0.2)
    raise SystemExit(f"{url} not ready within {seconds} s")


@contextlib.contextmanager
def _process(args: list[str], ready_url: str, env: dict | None = None):
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(ready_url, proc)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextlib.contextmanager
def serving_server(workdir: Path):
    """The project's serving server over a freshly exported (untrained) model: the same graph size."""
    from modelops import model  # TensorFlow: only when the bench starts its own server

    model.export(model.build(learning_rate=0.01, seed=0), workdir / "models" / "1")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        sys.executable,
        "-m",
        "modelops.serving",
        "--rest_api_port",
        str(port),
        "--port",
        "0",
        "--model_name",
        MODEL,
        "--model_base_path",
        str(workdir / "models"),
    ]
    with _process(args, f"{url}/v1/models/{MODEL}"):
        yield url


@contextlib.contextmanager
def frontend(tf_host: str, workdir: Path):
    port = _free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "TF_HOST": tf_host,
        "MODEL_NAME": MODEL,
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prometheus"),
    }
    with _process(
        [str(Path(sys.executable).parent / GUNICORN[0]), *GUNICORN[1:]], f"http://127.0.0.1:{port}/healthz", env
    ):
        yield f"http://127.0.0.1:{port}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time per case")
    parser.add_argument("--tf-host", help="an already running TF Serving (default: start the project's server)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-frontend-") as tmp:
        workdir = Path(tmp)
        with contextlib.ExitStack() as stack:
            tf_host = args.tf_host or stack.enter_context(serving_server(workdir))
            fe_url = stack.enter_context(frontend(tf_host, workdir))
            rows = []
            for clients in (1, 8):
                rows.append(
                    {"target": "direct", **measure(tf_host, f"/v1/models/{MODEL}:predict", clients, args.seconds)}
                )
                rows.append({"target": "frontend", **measure(fe_url, "/predict", clients, args.seconds)})

    by = {(r["target"], r["clients"]): r for r in rows}
    added_p50 = by["frontend", 1]["p50_ms"] - by["direct", 1]["p50_ms"]
    share = by["frontend", 8]["rps"] / by["direct", 8]["rps"]
    verdict = {
        "added_p50_ms_1_client": round(added_p50, 3),
        "throughput_share_8_clients": round(share, 3),
        "p50_target_met": added_p50 <= MAX_P50_ADDED_MS,
        "throughput_target_met": share >= MIN_THROUGHPUT_SHARE,
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps({"results": rows, **verdict}, indent=2))
    else:
        print(f"{'target':<9} {'clients':>7} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
        for r in rows:
            print(
                f"{r['target']:<9} {r['clients']:>7} {r['requests']:>9} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                f"{r['rps']:>8.0f}"
            )
        print(
            f"frontend adds {added_p50:.2f} ms at p50 (target <= {MAX_P50_ADDED_MS}); keeps {share:.0%} of the "
            f"direct throughput at 8 clients (target >= {MIN_THROUGHPUT_SHARE:.0%}); {os.cpu_count()} CPUs"
        )
    return 0 if verdict["p50_target_met"] and verdict["throughput_target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
