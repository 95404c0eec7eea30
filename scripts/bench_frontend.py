"""The frontend's own ceiling (``scripts/bench.py --frontend``): what it costs per request when the
upstream costs almost nothing, and beside it the same code in front of the local serving server.

The near-free upstream is Debian's haproxy answering TF Serving's status, metadata and predict
paths with fixed, correct JSON (``http-request return``, in C), so what the load measures is the
frontend itself. The frontend is started as the Procfile and the image start it (gunicorn with
``modelops.web.gunicorn_conf``, its default workers); with ``--old-ref REF`` the code of that git
commit runs beside it from a temporary folder, and the rounds alternate between them so both see
the same machine. wrk (Debian's ``wrk``) drives one keep-alive connection or eight, posting one
row; a frontend's CPU is the utime + stime of its gunicorn master and workers (``/proc``) over
the load, divided by the requests answered. Figures are medians over the rounds.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import REPO, tfserving
from harness.measure import machine
from harness.processes import GUNICORN, Service, Serving, wait_until
from harness.servers import free_port

MODEL = tfserving.MODEL
BODY = json.dumps({"instances": [[1.5, 2.3]]})
CONNECTIONS = (1, 8)
WORKERS = 2  # the frontend's default (gunicorn_conf, WEB_CONCURRENCY unset)
TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")
WRK_SCRIPT = """wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "failed": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status))
end
"""


def require_tools() -> None:
    missing = [tool for tool in ("haproxy", "wrk") if shutil.which(tool) is None]
    if missing:
        names = " ".join(missing)
        raise SystemExit(f"bench --frontend needs {names} on PATH (Debian: apt-get install -y {names})")


def haproxy_config(work: Path, port: int) -> Path:
    """An HTTP listener answering ``harness.tfserving.ROUTES`` from files; anything else 404."""
    answer = "http-request return status 200 content-type application/json file"
    rules = []
    for number, ((method, pattern), body) in enumerate(tfserving.ROUTES.items()):
        (work / f"answer{number}.json").write_text(body)
        rules += [f"    acl route{number} path_reg {pattern}",
                  f"    {answer} {work / f'answer{number}.json'} if METH_{method} route{number}"]
    routes = "\n".join(rules)
    config = work / "haproxy.cfg"
    config.write_text(f"""global
    nbthread 1
defaults
    mode http
    option http-buffer-request  # read the whole body before answering, as TF Serving does: the connection stays open
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend tfserving
    bind 127.0.0.1:{port}
{routes}
    http-request return status 404 content-type application/json string "{{}}"
""")
    return config


def start_frontend(code: Path, tf_host: str, work: Path, name: str) -> tuple[Service, str]:
    """gunicorn as the Procfile runs it, importing the package from ``code``."""
    port = free_port()
    (work / name).mkdir()
    config = work / name / "config.json"  # each code's own: an older commit may not know newer keys
    shutil.copy2(code / "config.json", config)
    env = {"PORT": str(port), "TF_HOST": tf_host, "MODEL_NAME": MODEL, "MODELOPS_CONFIG": str(config),
           "PROMETHEUS_MULTIPROC_DIR": str(work / name / "prometheus")}
    env.pop("WEB_CONCURRENCY", None)
    service = Service(GUNICORN, env=env, cwd=code)
    url = f"http://127.0.0.1:{port}"
    service.wait_port(port, seconds=60)
    wait_until(lambda: _post(url, "/predict")[0] == 200, seconds=60, what=f"{name} answering /predict")
    return service, url


def _post(url: str, path: str) -> tuple[int, dict, dict]:
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
    try:
        conn.request("POST", path, BODY, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), json.loads(response.read())
    finally:
        conn.close()


def processes(master: int, workers: int = WORKERS) -> list[int]:
    """The gunicorn master and its workers, once every worker has booted (a worker forked after the
    list was taken would serve requests whose CPU nobody counts)."""
    def listed() -> list[int] | None:
        pids = [master]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                    pids.append(int(stat.parent.name))
            except (OSError, ValueError, IndexError):
                continue
        return pids if len(pids) > workers else None

    return wait_until(listed, seconds=60, what=f"{workers} gunicorn workers of {master}")


def cpu_ticks(pids: list[int]) -> tuple[int, int]:
    """User and system (kernel) CPU ticks of ``pids`` so far."""
    user = system = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user, system = user + int(fields[11]), system + int(fields[12])  # utime, stime
    return user, system


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wrk(url: str, path: str, connections: int, seconds: float, script: Path, pids: list[int]) -> dict:
    """One wrk run; CPU ms per request of ``pids`` (empty: not measured) over it."""
    before = cpu_ticks(pids)
    result = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script), url + path],
                            capture_output=True, text=True, timeout=seconds + 60)
    after = cpu_ticks(pids)
    line = next((x for x in result.stdout.splitlines() if x.startswith("WRK ")), None)
    if result.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed against {url}{path}:\n{result.stdout}\n{result.stderr}")
    figures = json.loads(line[4:])
    if figures["failed"]:
        raise SystemExit(f"{url}{path}: {figures['failed']} failed requests at {connections} connections")
    requests = figures["requests"]
    row = {"requests": requests, "rps": requests / (figures["duration_us"] / 1e6),
           "p50_ms": figures["p50_us"] / 1e3, "p99_ms": figures["p99_us"] / 1e3}
    if pids:
        user, system = (b - a for a, b in zip(before, after, strict=True))
        row["cpu_ms_per_request"] = (user + system) * TICK_MS / requests
        row["kernel_ms_per_request"] = system * TICK_MS / requests
    return row


def export_model(work: Path) -> Path:
    """The first model, exported as the pipeline exports it, in a fresh process (TensorFlow stays out of this one)."""
    models = work / "models"
    code = ("import sys; from modelops.trainer.model import network as model; "
            "model.export(model.build(learning_rate=0.01, seed=0), sys.argv[1])")
    subprocess.run([sys.executable, "-c", code, str(models / "1")], cwd=REPO, check=True, capture_output=True)
    return models


def checkout(ref: str, work: Path) -> Path:
    """The tree of git ``ref`` in a temporary folder."""
    folder = work / "old"
    folder.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def run(seconds: float, rounds: int, old_ref: str | None) -> dict:
    require_tools()
    work = Path(tempfile.mkdtemp(prefix="modelops-bench-frontend-"))
    services: list[Service] = []
    try:
        codes = {"new": REPO} if old_ref is None else {"old": checkout(old_ref, work), "new": REPO}
        haproxy_port = free_port()
        haproxy = Service(["haproxy", "-db", "-f", str(haproxy_config(work, haproxy_port))])
        services.append(haproxy)
        haproxy.wait_port(haproxy_port, seconds=30)
        serving = Serving(export_model(work), MODEL, "--tensorflow_intra_op_parallelism=1",
                          "--tensorflow_inter_op_parallelism=1").wait_listening()
        services.append(serving)
        upstreams = {"haproxy": f"http://127.0.0.1:{haproxy_port}", "serving": serving.url}
        targets = {("haproxy", "direct"): (upstreams["haproxy"], f"/v1/models/{MODEL}:predict", []),
                   ("serving", "direct"): (serving.url, f"/v1/models/{MODEL}:predict", [])}
        for upstream, tf_host in upstreams.items():
            for code_name, code in codes.items():
                service, url = start_frontend(code, tf_host, work, f"{code_name}-{upstream}")
                services.append(service)
                status, headers, body = _post(url, "/predict")
                assert headers.get("X-Model-Version") == "1" and len(body["predictions"]) == 1, (headers, body)
                targets[(upstream, f"frontend ({code_name})")] = (url, "/predict", processes(service.proc.pid))
        script = work / "predict.lua"
        script.write_text(WRK_SCRIPT % BODY)
        runs: dict[tuple, list[dict]] = {}
        for _ in range(rounds):
            for connections in CONNECTIONS:
                for (upstream, name), (url, path, pids) in targets.items():
                    row = wrk(url, path, connections, seconds, script, pids)
                    runs.setdefault((upstream, name, connections), []).append(row)
        memory = {name: round(statistics.median(rss_mb(pid) for pid in pids[1:]), 1)
                  for (upstream, name), (_, _, pids) in targets.items() if pids and upstream == "haproxy"}
        return {"machine": machine(), "seconds_per_run": seconds, "rounds": rounds, "old_ref": old_ref,
                "rows": [{"upstream": upstream, "target": name, "connections": connections, **median_row(rows)}
                         for (upstream, name, connections), rows in runs.items()],
                "worker_rss_mb": memory}
    finally:
        for service in reversed(services):
            service.stop()
        shutil.rmtree(work, ignore_errors=True)


def median_row(rows: list[dict]) -> dict:
    return {key: round(statistics.median(row[key] for row in rows), 3) for key in rows[0]}


def markdown(result: dict) -> str:
    rows = {(r["upstream"], r["target"], r["connections"]): r for r in result["rows"]}
    lines = ["| upstream | connections | path | req/s | p50 ms | p99 ms | CPU ms/request (kernel) | vs direct |",
             "|---|---:|---|---:|---:|---:|---:|---|"]
    for (upstream, name, connections), row in rows.items():
        direct = rows[(upstream, "direct", connections)]
        cpu = (f"{row['cpu_ms_per_request']:.3f} ({row['kernel_ms_per_request']:.3f})"
               if "cpu_ms_per_request" in row else "—")
        versus = "—" if name == "direct" else (f"{row['rps'] / direct['rps']:.2f}x req/s, "
                                                f"{row['p50_ms'] - direct['p50_ms']:+.2f} ms p50")
        lines.append(f"| {upstream} | {connections} | {name} | {row['rps']:.0f} | {row['p50_ms']:.2f} "
                     f"| {row['p99_ms']:.2f} | {cpu} | {versus} |")
    lines += ["", f"- Machine: {result['machine']}; wrk, one row per request, {result['seconds_per_run']:g} s per "
              f"run, median of {result['rounds']} alternating rounds, one invocation."]
    if result["worker_rss_mb"]:
        lines.append("- Resident memory per gunicorn worker after the load (median): "
                     + ", ".join(f"{name} {mb:.1f} MB" for name, mb in result["worker_rss_mb"].items()) + ".")
    cpu = {r["target"]: r["cpu_ms_per_request"] for r in result["rows"]
           if r["upstream"] == "haproxy" and r["connections"] == 8 and "cpu_ms_per_request" in r}
    if "frontend (old)" in cpu:
        lines.append(f"- CPU per request at 8 connections, new / old (`{result['old_ref']}`): "
                     f"{cpu['frontend (new)'] / cpu['frontend (old)']:.2f}.")
    return "\n".join(lines)
