"""End to end, local mode: ``scripts/run_all.sh --local`` in a fresh copy of the repository
(``git ls-files``; the .venv is shared through a symlink) on free ports, then the whole chain.

One test, in the order a user lives it: the stack comes up (first model bootstrapped), the form
and ``/predict`` answer through frontend -> serving, Prometheus scrapes all three services and
has a frontend metric, a simulated data batch is retrained by the trainer service (its cron set
to every minute in the copy) and served while a client keeps predicting without a single failed
request, and Ctrl-C leaves no process and no port behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from harness.project import TEST_SPLIT_KEY
from modelops import stack

ROOT = Path(__file__).resolve().parents[2]
MODEL = "simple_classifier"

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]


def _tracked() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [p for p in out.decode().split("\0") if p]


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("0.0.0.0", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _copy_repo(dest: Path) -> None:
    """The files git tracks, as a fresh clone has them: a module not yet added fails here, by name."""
    untracked = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "modelops", "scripts", "monitoring"],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert not untracked, f"not tracked by git, so a fresh clone (and the stack's copy) lacks them: {untracked}"
    for rel in _tracked():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    if (ROOT / ".tools").exists():
        (dest / ".tools").symlink_to(ROOT / ".tools")
    config = json.loads((dest / "config.json").read_text())
    config["schedule"]["cron"] = "* * * * *"  # the trainer service retrains every minute
    (dest / "config.json").write_text(json.dumps(config, indent=2))
    # The tests' fixed split: the same eval rows every run, so no gate decision depends on a random key
    # (a fresh key once put a 5-epoch bootstrap model at 96.83 %, under the gate, and run_all.sh stopped).
    (dest / "runs").mkdir()
    (dest / "runs" / "split.key").write_text(TEST_SPLIT_KEY + "\n")


def _processes_in(directory: Path) -> list[tuple[int, str]]:
    """Processes whose working directory is inside ``directory`` (all the stack's are)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cwd == directory or directory in cwd.parents:
            found.append((int(entry.name), cmdline.strip()))
    return found


def _wait(what: str, check, timeout: float, proc: subprocess.Popen | None = None, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except (requests.RequestException, OSError, ValueError, KeyError):
            value = None
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"run_all.sh exited ({proc.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class PredictLoop(threading.Thread):
    """A client predicting in a loop over one keep-alive session, recording every failure."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.stop, self.ok, self.failures = url, threading.Event(), 0, []

    def run(self):
        with requests.Session() as session:
            while not self.stop.is_set():
                try:
                    r = session.post(self.url, json={"instances": [[1.5, 2.3], [0.8, -1.2]]}, timeout=10)
                    if r.status_code == 200 and len(r.json()["predictions"]) == 2:
                        self.ok += 1
                    else:
                        self.failures.append(f"{r.status_code} {r.text[:200]}")
                except (requests.RequestException, ValueError, KeyError) as exc:
                    self.failures.append(repr(exc))
                time.sleep(0.02)


def _history(copy: Path) -> list[dict]:
    path = copy / "runs/history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _served_versions(rest: str) -> set[int]:
    status = requests.get(f"{rest}/v1/models/{MODEL}", timeout=5).json()
    return {int(v["version"]) for v in status["model_version_status"] if v["state"] == "AVAILABLE"}


def _tear_down(proc: subprocess.Popen, copy: Path) -> None:
    """Stop run_all.sh if still running, then kill whatever this test started (cwd in its copy)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    for pid, _cmd in _processes_in(copy):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_local_stack_end_to_end(tmp_path_factory):
    copy = tmp_path_factory.mktemp("stack") / "repo"
    _copy_repo(copy)
    names = ["FRONTEND_PORT", "TF_REST_PORT", "TF_GRPC_PORT", "PROMETHEUS_PORT", "TRAINER_METRICS_PORT"]
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    env = {k: v for k, v in os.environ.items() if k not in ("MODELOPS_CONFIG", "TF_HOST", "MODEL_NAME")}
    env.update({k: str(v) for k, v in ports.items()}, STACK_READY_TIMEOUT="600")
    frontend = f"http://127.0.0.1:{ports['FRONTEND_PORT']}"
    rest = f"http://127.0.0.1:{ports['TF_REST_PORT']}"
    prometheus = f"http://127.0.0.1:{ports['PROMETHEUS_PORT']}"

    log = (copy.parent / "run_all.log").open("wb")
    proc = subprocess.Popen(["scripts/run_all.sh", "--local"], cwd=copy, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    loop = PredictLoop(f"{frontend}/predict")
    try:
        # 1. Up: bootstrapped, ready, URLs printed.
        _wait("the stack to be ready", lambda: b"stack: ready" in (copy.parent / "run_all.log").read_bytes(),
              timeout=900, proc=proc)
        assert stack.has_model(copy / "models")
        assert f"http://localhost:{ports['FRONTEND_PORT']}" in (copy.parent / "run_all.log").read_text()

        # 2. The form and /predict through frontend -> serving.
        page = requests.get(f"{frontend}/", timeout=10)
        assert page.status_code == 200 and "<form" in page.text
        r = requests.post(f"{frontend}/predict", json={"instances": [[1.5, 2.3], [0.8, -1.2]]}, timeout=10)
        assert r.status_code == 200, r.text
        predictions = r.json()["predictions"]
        assert len(predictions) == 2 and all(0.0 <= p[0] <= 1.0 for p in predictions)
        assert requests.post(f"{frontend}/predict", data={"x1": "1", "x2": "1"}, timeout=10).status_code == 200
        assert requests.get(f"{rest}/monitoring/prometheus/metrics", timeout=10).status_code == 200

        # 3. A real Prometheus scrapes all three services (and itself) and has frontend metrics.
        def targets_up():
            active = requests.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
            health = {t["labels"]["job"]: t["health"] for t in active}
            return health if set(health.values()) == {"up"} and len(health) == 4 else None

        assert set(_wait("all Prometheus targets up", targets_up, timeout=120, proc=proc)) == {
            "prometheus", "trainer", "tfserving", "frontend"}

        def frontend_metric():
            query = {"query": 'sum(modelops_frontend_requests_total{endpoint="/predict"})'}
            result = requests.get(f"{prometheus}/api/v1/query", params=query, timeout=5).json()["data"]["result"]
            return result and float(result[0]["value"][1]) >= 2

        _wait("a frontend metric in Prometheus", frontend_metric, timeout=120, proc=proc)

        # 4. A new batch, retrained by the trainer service, served with no failed request.
        loop.start()
        simulate = subprocess.run([str(copy / ".venv/bin/python"), "retrain_pipeline.py", "simulate",
                                   "--rows", "500", "--seed", "7"], cwd=copy, env=env, capture_output=True, text=True)
        assert simulate.returncode == 0, simulate.stdout + simulate.stderr

        def promoted_with_the_batch():
            return next((r["version"] for r in _history(copy)
                         if r["event"] == "promote" and r.get("batches_accepted", 0) >= 1), None)

        version = _wait("the trainer to promote a model trained on the new batch", promoted_with_the_batch,
                        timeout=300, proc=proc, interval=2.0)
        _wait(f"serving to report version {version} AVAILABLE", lambda: version in _served_versions(rest),
              timeout=120, proc=proc)
        _wait(f"the trainer to verify version {version}",
              lambda: any(r["event"] == "verified" and r.get("version") == version for r in _history(copy)),
              timeout=120, proc=proc)
        time.sleep(3)  # the previous version unloads after the new one serves: keep predicting through it
        loop.stop.set()
        loop.join(timeout=30)
        assert loop.failures == [], f"{len(loop.failures)} failed of {loop.ok + len(loop.failures)}"
        assert loop.ok > 20

        # 5. Ctrl-C (SIGINT to the foreground process group) stops everything.
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=90) == 0
        _wait("every stack process to exit", lambda: not _processes_in(copy), timeout=10, interval=0.5)
        assert stack.busy_ports(ports) == []
    finally:
        loop.stop.set()
        _tear_down(proc, copy)
        log.close()
        print((copy.parent / "run_all.log").read_text(errors="replace")[-20000:])
