"""Each image's requirement file is complete for what that image runs, without a container engine.

A clean virtual environment gets exactly the ``pip install`` commands of one Dockerfile (no
development tools), a folder gets exactly what its ``COPY`` lines copy, and the image's real
command runs there: the frontend's gunicorn command (gevent workers) must answer ``/readyz``; the
trainer must import every module it ships and start ``python -m modelops.trainer.scheduler``. A package
that only the development venv happens to have (gunicorn's gevent worker needs ``packaging``,
which gunicorn does not declare) fails here, not in a user's ``docker compose up``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from harness import REPO
from harness.processes import Service, wait_until
from harness.servers import QuietHandler, free_port, http_server

pytestmark = pytest.mark.slow


class Dockerfile:
    """The parts of a Dockerfile that decide what its image runs: ENV, WORKDIR, COPY, pip installs, CMD."""

    def __init__(self, name: str):
        text = re.sub(r"\\\n", " ", (REPO / name).read_text())
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        self.env: dict[str, str] = {}
        self.copies: list[tuple[list[str], str]] = []
        self.pip_installs: list[list[str]] = []
        self.workdir = "/"
        self.cmd: list[str] = []
        for line in lines:
            word, _, rest = line.partition(" ")
            if word == "ENV":
                self.env.update(part.split("=", 1) for part in shlex.split(rest))
            elif word == "WORKDIR":
                self.workdir = rest.strip()
            elif word == "COPY":
                *sources, dest = [p for p in rest.split() if not p.startswith("--")]
                self.copies.append((sources, dest))
            elif word == "RUN":
                self.pip_installs += [shlex.split(cmd)[2:] for cmd in re.findall(r"pip install [^&;]+", rest)]
            elif word == "CMD":
                self.cmd = json.loads(rest)

    def lay_out(self, root: Path) -> Path:
        """Copy what the COPY lines copy under the WORKDIR into ``root``; returns the workdir there."""
        app = root / self.workdir.lstrip("/")
        for sources, dest in self.copies:
            if not dest.startswith("/"):
                dest = f"{self.workdir}/{dest}"
            target = root / dest.lstrip("/")
            for pattern in sources:
                for source in sorted(REPO.glob(pattern.rstrip("/"))):
                    if source.is_dir():  # Docker copies a directory's contents, less what .dockerignore names
                        shutil.copytree(source, target, dirs_exist_ok=True, ignore=_dockerignored)
                    else:
                        into = target / source.name if dest.endswith("/") else target
                        into.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(source, into)
        return app


def _dockerignored(folder: str, names: list[str]) -> set[str]:
    """What .dockerignore keeps out of a copied folder: caches and the files it names one by one."""
    named = {line for line in (REPO / ".dockerignore").read_text().splitlines()
             if line and line[0] not in "#!" and "*" not in line}
    return {name for name in names
            if name == "__pycache__" or (Path(folder) / name).relative_to(REPO).as_posix() in named}


def clean_venv(dockerfile: Dockerfile, where: Path) -> Path:
    """A venv with nothing but what the Dockerfile's pip commands install; returns its bin folder."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=300)
    pip = [str(where / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    for args in dockerfile.pip_installs:
        # The image installs with --no-cache-dir; here the cache only saves downloads.
        args = [arg for arg in args if arg != "--no-cache-dir"]
        subprocess.run([*pip, "install", *args], check=True, timeout=900, cwd=REPO)
    return where / "bin"


def image_env(dockerfile: Dockerfile, bin_dir: Path, **overrides: str) -> dict[str, str]:
    """The image's ENV over a minimal environment: no PYTHONPATH or venv of the test run leaks in."""
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "LANG": "C.UTF-8"}
    return {**env, **dockerfile.env, **overrides}


def test_every_pip_install_of_an_image_is_pinned():
    for name in ("Dockerfile.frontend", "Dockerfile.trainer"):
        for args in Dockerfile(name).pip_installs:
            for arg in args:
                if arg.startswith("-r") or arg.endswith((".txt", ".lock")):
                    continue
                assert arg.startswith("-") or "==" in arg, f"{name}: pip install {arg} is not pinned"


def test_the_frontend_image_serves_from_its_own_requirements_alone(tmp_path):
    dockerfile = Dockerfile("Dockerfile.frontend")
    bin_dir = clean_venv(dockerfile, tmp_path / "venv")
    app = dockerfile.lay_out(tmp_path / "image")
    state = tmp_path / "state"
    (state / "models").mkdir(parents=True)
    shutil.copy2(REPO / "config.json", state / "config.json")

    class Serving(QuietHandler):  # TF Serving's model status: one AVAILABLE version
        def do_GET(self):  # noqa: N802 (http.server API)
            body = json.dumps({"model_version_status": [
                {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    port = free_port()
    with http_server(Serving) as upstream:
        env = image_env(dockerfile, bin_dir, PORT=str(port), BIND_ADDRESS="127.0.0.1", TF_HOST=upstream,
                        MODEL_NAME="simple_classifier", MODELOPS_CONFIG=str(state / "config.json"),
                        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"))
        service = Service(dockerfile.cmd, env=env, cwd=app, inherit_env=False)
        try:
            def readyz():
                assert service.proc.poll() is None, f"the frontend's command exited:\n{service.output}"
                return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5)

            ready = wait_until(readyz, seconds=60, what="the frontend image's command answering /readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["version"] == 1
            form = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
            assert form.status_code == 200 and "x1" in form.text
        finally:
            service.stop()


def test_the_trainer_image_imports_everything_and_starts_from_its_own_requirements_alone(tmp_path):
    dockerfile = Dockerfile("Dockerfile.trainer")
    bin_dir = clean_venv(dockerfile, tmp_path / "venv")
    app = dockerfile.lay_out(tmp_path / "image")
    env = image_env(dockerfile, bin_dir)
    # Every module the image ships except the frontend's package (the trainer never runs it: nothing
    # outside modelops/web imports it, which importing the rest without Flask proves).
    every_module = (
        "import importlib, pkgutil, modelops\n"
        "names = [m.name for m in pkgutil.walk_packages(modelops.__path__, 'modelops.')\n"
        "         if not m.name.endswith('__main__') and not m.name.startswith('modelops.web')]\n"
        "[importlib.import_module(n) for n in names]\n"
        "import retrain_pipeline, train_tf\n"
        "print(len(names), 'modules')"
    )
    imported = subprocess.run([dockerfile.cmd[0], "-c", every_module], cwd=app, env=env, capture_output=True,
                              text=True, timeout=300)
    assert imported.returncode == 0, imported.stderr
    started = subprocess.run([*dockerfile.cmd, "--help"], cwd=app, env=env, capture_output=True, text=True,
                             timeout=300)
    assert started.returncode == 0 and "usage" in started.stdout.lower(), started.stderr
