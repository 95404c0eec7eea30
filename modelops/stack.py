"""Start the whole stack with one command, and probe its services' health.

``scripts/run_all.sh`` runs setup and then ``python -m modelops.stack up``; the logic lives here
so it can be tested. ``up`` uses Docker Compose when a Docker engine answers (``--local`` forces
local mode), else runs the ``Procfile`` with honcho after bootstrapping a first model (TF Serving
opens no port before a version exists). It waits until the frontend's ``/readyz`` answers, prints
the URLs, and on Ctrl-C or SIGTERM stops everything it started.

Ports come from env vars with the README's defaults (``FRONTEND_PORT`` ...), so tests and users
can move them. Local mode listens on ``BIND_ADDRESS`` only (default 127.0.0.1; 0.0.0.0 opens
every service to the network). ``monitoring/prometheus.yml`` is written for compose (targets
are service names); local mode derives ``.stack/prometheus.yml`` from it by rewriting the
targets, so it stays the only copy. Alertmanager runs where its binary exists (Debian package
``prometheus-alertmanager``); ``monitoring/alertmanager.sh`` renders its config at start in
both modes.

``probe`` is the containers' healthcheck (``modelops.core.probe``, which both images hold).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from modelops import monitoring_auth
from modelops.core import probe as probe_args
from modelops.core.errors import ModelopsError
from modelops.core.exit_codes import ExitCode
from modelops.core.paths import REPO_ROOT
from modelops.core.probe import has_model, probe
from modelops.core.tfserving_client import connect_host, serving_address

STACK_DIR = REPO_ROOT / ".stack"

DEFAULT_PORTS = {
    "FRONTEND_PORT": 5002,
    "TF_REST_PORT": 8501,
    "TF_GRPC_PORT": 8500,
    "PROMETHEUS_PORT": 9090,
    "TRAINER_METRICS_PORT": 9102,
    "ALERTMANAGER_PORT": 9093,
}
DEFAULT_BIND = "127.0.0.1"
# Scrape target in monitoring/prometheus.yml -> the port variable it listens on locally.
COMPOSE_TARGETS = {
    "prometheus:9090": "PROMETHEUS_PORT",
    "trainer:9102": "TRAINER_METRICS_PORT",
    "tfserving:8501": "TF_REST_PORT",
    "frontend:5002": "FRONTEND_PORT",
    "alertmanager:9093": "ALERTMANAGER_PORT",
}
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")  # Debian's name, upstream's
LOCAL_SERVICES = ("trainer", "tfserving", "frontend")


class StackError(Exception):
    """The stack cannot start; the message says why and what to do."""


def ports_from_env(env: dict[str, str]) -> dict[str, int]:
    """Each port variable from ``env`` or its README default; reject anything not a TCP port."""
    ports = {}
    for name, default in DEFAULT_PORTS.items():
        raw = env.get(name) or str(default)
        if not raw.isdigit() or not 0 < int(raw) < 65536:
            raise StackError(f"{name} must be a TCP port number, got {raw!r}")
        ports[name] = int(raw)
    if len(set(ports.values())) != len(ports):
        raise StackError(f"the stack's ports must differ: {ports}")
    return ports


def bind_address(env: dict[str, str]) -> str:
    """``BIND_ADDRESS`` (default 127.0.0.1): the IPv4 address every local-mode service listens on."""
    raw = env.get("BIND_ADDRESS") or DEFAULT_BIND
    try:
        ipaddress.IPv4Address(raw)
    except ValueError:
        raise StackError(f"BIND_ADDRESS must be an IPv4 address such as 127.0.0.1 (this machine only) "
                         f"or 0.0.0.0 (every interface), got {raw!r}") from None
    return raw


def local_prometheus_config(text: str, ports: dict[str, int], rules_dir: Path, host: str = DEFAULT_BIND) -> str:
    """Rewrite the compose-side Prometheus config for local mode.

    Targets (scrape and Alertmanager) become ``host`` and the local ports; rule files become
    absolute, because Prometheus resolves them against the config file's directory, which is
    ``.stack/`` here.
    """
    for target, port_var in COMPOSE_TARGETS.items():
        quoted = f'"{target}"'
        if quoted not in text:
            raise StackError(f"monitoring/prometheus.yml has no target {quoted}: update modelops/stack.py")
        text = text.replace(quoted, f'"{host}:{ports[port_var]}"')
    lines, in_rules = [], False
    for line in text.splitlines():
        stripped = line.strip()
        if in_rules and stripped.startswith("- "):
            line = line.replace(stripped, f"- {rules_dir / stripped[2:].strip()}")
        elif stripped and not line.startswith(" "):
            in_rules = stripped == "rule_files:"
        lines.append(line)
    return "\n".join(lines) + "\n"


def docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def compose_command() -> list[str]:
    """``docker compose`` (the plugin) if present, else the standalone ``docker-compose``."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise StackError("a Docker engine answers but neither `docker compose` nor `docker-compose` is installed")


def busy_ports(ports: dict[str, int]) -> list[str]:
    """The port variables whose port already has a listener (e.g. the stack is already up)."""
    busy = []
    for name, port in ports.items():
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                busy.append(f"{name}={port}")
    return busy


def local_env(base: dict[str, str], ports: dict[str, int], model_name: str, models_dir: Path) -> dict[str, str]:
    """The environment the Procfile's processes get: the same variables compose sets."""
    env = dict(base)
    env.update({name: str(port) for name, port in ports.items()})
    env["BIND_ADDRESS"] = bind_address(base)
    # The venv's python, gunicorn and honcho first (not resolved: the venv's bin may be a symlink).
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    host = connect_host(env["BIND_ADDRESS"])
    env["TF_HOST"] = serving_address({k: env[k] for k in ("BIND_ADDRESS", "TF_REST_PORT")})  # the stack's own
    env["MODEL_NAME"] = model_name
    env["MODELS_DIR"] = str(models_dir)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(STACK_DIR / "frontend-metrics")
    env["FRONTEND_METRICS_URL"] = f"http://{host}:{ports['FRONTEND_PORT']}/metrics"  # rollout evidence
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if shutil.which("tensorflow_model_server", path=env["PATH"]):
        env["TF_SERVING_BIN"] = "tensorflow_model_server"
    alertmanager = next((b for b in ALERTMANAGER_BINARIES if shutil.which(b, path=env["PATH"])), None)
    if alertmanager:
        env["ALERTMANAGER_BIN"] = alertmanager
    return env


def serving_config_env(config) -> dict[str, str]:
    """Serving runs from the config file the trainer writes, in every rollout.mode, as in compose and on
    Kubernetes (Procfile: TF_SERVING_CONFIG_ARGS; without it the Procfile falls back to name and path)."""
    from modelops.core.store import ModelStore
    from modelops.trainer import rollout_control

    rollout_control.sync(config, ModelStore(config.models_dir))  # serving reads it at start: it must exist
    return {"TF_SERVING_CONFIG_ARGS": f"--model_config_file={config.serving_config_path} "
                                      "--model_config_file_poll_wait_seconds=1"}


def bootstrap(env: dict[str, str], models_dir: Path) -> None:
    """Train and publish a first model if none exists, so serving has something to load."""
    if has_model(models_dir):
        return
    print("stack: no model yet; training the first one (python retrain_pipeline.py)", flush=True)
    code = subprocess.run([sys.executable, "retrain_pipeline.py"], cwd=REPO_ROOT, env=env).returncode
    if code == ExitCode.REJECTED:
        raise StackError("the gate rejected the bootstrap model; see notifications.log and last_train_log.txt")
    if code != ExitCode.OK or not has_model(models_dir):
        raise StackError(f"bootstrapping the first model failed (exit {code}); see last_train_log.txt")


def wait_ready(url: str, timeout: float, alive) -> None:
    """Poll ``url`` until it answers 2xx; fail early if ``alive()`` turns false."""
    deadline = time.monotonic() + timeout
    while not probe(url, timeout=2.0):
        if not alive():
            raise StackError("a service exited during startup; see its output above")
        if time.monotonic() > deadline:
            raise StackError(f"{url} not ready after {timeout:.0f}s")
        time.sleep(1.0)


def print_urls(ports: dict[str, int], model_name: str, local: bool, host: str = "localhost") -> None:
    rest = f"http://{host}:{ports['TF_REST_PORT']}"
    lines = [
        f"Frontend web UI:     http://{host}:{ports['FRONTEND_PORT']}",
        f"TF Serving REST:     {rest}/v1/models/{model_name}",
        f"TF Serving gRPC:     {host}:{ports['TF_GRPC_PORT']}",
        f"TF Serving metrics:  {rest}/monitoring/prometheus/metrics",
        f"Prometheus:          http://{host}:{ports['PROMETHEUS_PORT']}",
        f"Alertmanager:        http://{host}:{ports['ALERTMANAGER_PORT']}",
    ]
    if local:
        lines.append(f"Trainer metrics:     http://{host}:{ports['TRAINER_METRICS_PORT']}/metrics")
    print("stack: ready (Ctrl-C stops everything)\n  " + "\n  ".join(lines), flush=True)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def run_local(ports: dict[str, int], timeout: float) -> int:
    from modelops.core.config import load_config  # validates config.json before anything starts
    from modelops.core.model_name import served_model_name

    config = load_config()
    busy = busy_ports(ports)
    if busy:
        raise StackError(f"ports already in use: {', '.join(busy)} (is the stack already running?)")
    env = local_env(dict(os.environ), ports, served_model_name(config), config.models_dir)
    bootstrap(env, config.models_dir)
    env.update(serving_config_env(config))

    host = connect_host(env["BIND_ADDRESS"])
    STACK_DIR.mkdir(exist_ok=True)
    monitoring = REPO_ROOT / "monitoring"
    derived = local_prometheus_config((monitoring / "prometheus.yml").read_text(), ports, monitoring, host)
    derived = _monitoring_auth(env, derived)
    (STACK_DIR / "prometheus.yml").write_text(derived)
    services = list(LOCAL_SERVICES)
    if shutil.which("prometheus", path=env["PATH"]):
        services.append("prometheus")
    else:
        print("stack: no prometheus binary; starting without monitoring", flush=True)
    if "ALERTMANAGER_BIN" in env:
        services.append("alertmanager")
    else:
        print("stack: no prometheus-alertmanager binary; alerts reach nobody (scripts/setup.sh installs it)",
              flush=True)

    honcho = subprocess.Popen(
        [str(Path(sys.executable).parent / "honcho"), "-f", str(REPO_ROOT / "Procfile"), "start", *services],
        cwd=REPO_ROOT,
        env=env,
    )
    try:
        wait_ready(f"http://{host}:{ports['FRONTEND_PORT']}/readyz", timeout, lambda: honcho.poll() is None)
        print_urls(ports, env["MODEL_NAME"], local=True, host="localhost" if host == "127.0.0.1" else host)
        return honcho.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(honcho)


def _monitoring_auth(env: dict[str, str], prometheus_yml: str) -> str:
    """Basic auth on Prometheus and Alertmanager (``modelops.monitoring_auth``): required beyond
    loopback; sets ``MONITORING_WEB_CONFIG`` for the Procfile and returns Prometheus's config with
    the credentials it needs."""
    try:
        creds = monitoring_auth.credentials(env, env["BIND_ADDRESS"])
        if creds is None:
            env.pop(monitoring_auth.WEB_CONFIG_ENV, None)
            return prometheus_yml
        web, secret = monitoring_auth.write_files(STACK_DIR, *creds)
        env[monitoring_auth.WEB_CONFIG_ENV] = str(web)
        return monitoring_auth.with_basic_auth(prometheus_yml, creds[0], secret)
    except monitoring_auth.AuthError as exc:
        raise StackError(str(exc)) from None


def _stop(honcho: subprocess.Popen) -> None:
    """SIGTERM honcho, which signals each service's process group and SIGKILLs after 5 s."""
    if honcho.poll() is None:
        honcho.send_signal(signal.SIGTERM)
    try:
        honcho.wait(timeout=30)
    except subprocess.TimeoutExpired:
        honcho.kill()
        honcho.wait()


def run_docker(ports: dict[str, int], timeout: float) -> int:
    compose = compose_command()
    try:  # Prometheus and Alertmanager take the password's hash (monitoring/web_auth.sh)
        env = monitoring_auth.compose_env(dict(os.environ))
    except monitoring_auth.AuthError as exc:
        raise StackError(str(exc)) from None
    try:
        subprocess.run([*compose, "up", "-d", "--build"], cwd=REPO_ROOT, check=True, env=env)
        wait_ready(f"http://127.0.0.1:{ports['FRONTEND_PORT']}/readyz", timeout, lambda: True)
        from modelops.core.config import load_config
        from modelops.core.model_name import served_model_name

        print_urls(ports, served_model_name(load_config()), local=False)
        subprocess.run([*compose, "logs", "--follow"], cwd=REPO_ROOT)
        return 0
    except KeyboardInterrupt:
        return 0
    except subprocess.CalledProcessError as exc:
        raise StackError(f"{' '.join(compose)} up failed (exit {exc.returncode})") from None
    finally:
        # Stops and removes the containers; the named volumes (models, history) stay.
        subprocess.run([*compose, "down"], cwd=REPO_ROOT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelops.stack", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the stack and wait for Ctrl-C")
    up.add_argument("--local", action="store_true", help="local processes even if a Docker engine answers")
    up.add_argument("--timeout", type=float, default=float(os.environ.get("STACK_READY_TIMEOUT", "900")))
    probe_args.add_arguments(sub.add_parser("probe", help="healthcheck (python -m modelops.core.probe)"))
    args = parser.parse_args(argv)

    if args.command == "probe":
        return probe_args.run(args)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        ports = ports_from_env(dict(os.environ))
        if not args.local and docker_engine_answers():
            return run_docker(ports, args.timeout)
        return run_local(ports, args.timeout)
    except (StackError, ModelopsError) as exc:
        print(f"stack: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
