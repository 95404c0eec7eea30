"""Real processes: a subprocess with captured output, the local serving server and the frontend
under gunicorn, each started the way users start them."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from harness import REPO
from harness.servers import free_port, port_open

GUNICORN = [str(Path(sys.executable).parent / "gunicorn"), "--config", "python:modelops.web.gunicorn_conf",
            "modelops.web:create_app()"]


class Service:
    """A subprocess whose merged output a thread collects, so tests can wait for a line."""

    def __init__(self, args, env=None, cwd=REPO, inherit_env: bool = True):
        """``env`` adds to the test's environment, or replaces it when ``inherit_env`` is false."""
        self.args = list(args)
        base = os.environ if inherit_env else {}
        self.proc = subprocess.Popen(
            self.args, cwd=cwd, env={**base, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"{text!r} never appeared; output so far:\n{self.output}")

    def wait_port(self, port: int, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while not port_open(port):
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.args[:3]} exited with {self.proc.returncode}:\n{self.output}")
            if time.monotonic() > deadline:
                raise AssertionError(f"port {port} not open within {seconds} s:\n{self.output}")
            time.sleep(0.05)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def stop(self, sig=None, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig) if sig else self.proc.terminate()
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join(5)
        return code


class Serving(Service):
    """``python -m modelops.localserving`` over ``models_dir`` on free ports (gRPC off unless asked)."""

    def __init__(self, models_dir: Path, model_name: str, *flags: str, grpc: bool = False, rest_port: int = 0,
                 poll_seconds: str = "1"):
        self.rest_port = rest_port or free_port()
        self.grpc_port = free_port() if grpc else 0
        self.model_name = model_name
        self.url = f"http://127.0.0.1:{self.rest_port}"
        super().__init__([sys.executable, "-m", "modelops.localserving", "--port", str(self.grpc_port),
                          "--rest_api_port", str(self.rest_port), "--model_name", model_name,
                          "--model_base_path", str(models_dir), "--file_system_poll_wait_seconds", poll_seconds,
                          *flags])

    def wait_listening(self, seconds: float = 120) -> Serving:
        self.wait_port(self.rest_port, seconds)
        return self


@contextlib.contextmanager
def frontend(tf_host: str, model_name: str, config_path: Path, workdir: Path, workers: int = 2, **env: str):
    """The frontend under gunicorn with the production command (``env``: more settings); yields its base URL."""
    port = free_port()
    service = Service(GUNICORN, env={
        "PORT": str(port), "TF_HOST": tf_host, "MODEL_NAME": model_name, "MODELOPS_CONFIG": str(config_path),
        "WEB_CONCURRENCY": str(workers),
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prometheus"), **env,
    })
    url = f"http://127.0.0.1:{port}"
    try:
        service.wait_port(port, seconds=60)
        wait_until(lambda: requests.get(f"{url}/healthz", timeout=5).ok, what="the frontend's /healthz")
        yield url
    finally:
        service.stop()


def wait_until(condition, seconds: float = 60, what: str = "condition", interval: float = 0.1):
    """Poll ``condition()`` until it returns something truthy; connection errors count as not yet."""
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(requests.RequestException, ValueError, KeyError):
            result = condition()
            if result:
                return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {seconds} s")
        time.sleep(interval)
