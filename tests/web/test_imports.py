"""The frontend image has no TensorFlow, Keras, numpy or requests, and holds only modelops/core/ and
modelops/web/: the frontend is started as its image starts it, in a process where those packages
cannot be imported, and serves every page and a prediction; each module it loaded on the way must
be one its Dockerfile copies. A static check of the same rules: tests/test_boundaries.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import PurePosixPath

import pytest

from harness import REPO

NOT_IN_THE_IMAGE = ("tensorflow", "keras", "numpy", "requests")
GET_PATHS = ("/healthz", "/readyz", "/", "/drift", "/metrics", "/openapi.json")
# Runs in the subprocess: block the packages, boot as gunicorn's master does (gunicorn_conf, then
# app.py's create_app()), serve against a stdlib fake TF Serving, report as JSON.
FRONTEND = """
import importlib.abc, json, os, pathlib, sys

BLOCKED = set(sys.argv[1].split(","))

class NotInTheImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not installed in the frontend image")

sys.meta_path.insert(0, NotInTheImage())

from harness import tfserving
from harness.servers import http_server

with http_server(tfserving.Handler) as url:
    os.environ.update(TF_HOST=url, MODEL_NAME=tfserving.MODEL)
    from modelops.web import gunicorn_conf
    gunicorn_conf.on_starting(None)
    import app
    client = app.app.test_client()
    status = {path: client.get(path).status_code for path in sys.argv[2].split(",")}
    predict = client.post("/predict", json={"instances": [[1.5, 2.3]]})
    status["POST /predict"] = predict.status_code
root = pathlib.Path.cwd().resolve()
print(json.dumps({
    "status": status, "predict": predict.get_json(),
    "blocked_loaded": sorted(n for n in sys.modules if n.partition(".")[0] in BLOCKED and sys.modules[n]),
    "files": sorted(str(pathlib.Path(m.__file__).resolve().relative_to(root)) for n, m in list(sys.modules.items())
                    if n.partition(".")[0] in ("modelops", "app")),
}))
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """What the frontend answered and loaded, booted without the packages its image lacks."""
    state = tmp_path_factory.mktemp("frontend")
    shutil.copy(REPO / "config.json", state / "config.json")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(state), "MODELOPS_CONFIG": str(state / "config.json"),
           "PROMETHEUS_MULTIPROC_DIR": str(state / "prometheus"), "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", FRONTEND, ",".join(NOT_IN_THE_IMAGE), ",".join(GET_PATHS)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_the_frontend_serves_every_page_and_a_prediction_without_tensorflow_keras_numpy_or_requests(served):
    assert served["status"] == {**dict.fromkeys(GET_PATHS, 200), "POST /predict": 200}
    assert served["predict"]["predictions"] == [[pytest.approx(0.731058598)]]
    assert served["blocked_loaded"] == []


def test_the_frontend_image_copies_every_module_the_frontend_loads_and_nothing_else_of_the_package(served):
    copied = [PurePosixPath(source.rstrip("/")) for sources in
              re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", (REPO / "Dockerfile.frontend").read_text(), re.M)
              for source in sources.split()]

    def shipped(path: str) -> bool:
        file = PurePosixPath(path)
        return any(file.match(str(source)) or source in file.parents for source in copied)

    loaded = [path for path in served["files"] if path.startswith("modelops/")]
    assert loaded and all(shipped(path) for path in loaded), [p for p in loaded if not shipped(p)]
    package = sorted(str(path.relative_to(REPO)) for path in (REPO / "modelops").rglob("*.py"))
    assert {path for path in package if shipped(path)} == {
        path for path in package if path == "modelops/__init__.py" or path.startswith(("modelops/core/",
                                                                                         "modelops/web/"))}
