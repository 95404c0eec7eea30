"""Serving contract fixtures: real SavedModels, and a server to test them on.

By default every test runs against the project's own server (``python -m modelops.localserving``,
a subprocess on free ports) over a temp model dir holding real SavedModels from
``modelops.trainer.model.network``: model A (seed 1) and model B (seed 2), untrained, so they answer differently.

The same tests run unchanged against any TF Serving (e.g. the stock Docker image) serving a
model with this project's signature when these are set:

    TF_SERVING_URL        REST base URL, e.g. http://127.0.0.1:8501
    TF_SERVING_MODEL      the model name
    TF_SERVING_GRPC       host:port of its gRPC API (else the gRPC tests skip)
    TF_SERVING_MODEL_DIR  its model base path, writable from here: enables the tests that publish
                          and delete versions (else they skip); start that server with
                          --max_num_load_retries=0, or a half-written version stays LOADING 5 min

Tests of our own flags (monitoring on/off, REST timeout, startup, limits) skip in that mode. The
tests on TF Serving's own kind of test models (``saved_models.py``) run against a real TF Serving
serving them when ``TF_SERVING_ZOO_URL`` (and ``TF_SERVING_ZOO_GRPC``) are set, else skip there.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import requests

from harness.processes import Serving

REMOTE_URL = os.environ.get("TF_SERVING_URL")
MODEL = "m"  # the model name our own servers serve
ROWS = [[1.5, 2.3], [0.8, -1.2], [-3.0, 0.25], [0.0, 0.0]]
local_only = pytest.mark.skipif(bool(REMOTE_URL), reason="tests this server's own flags; TF_SERVING_URL is set")


@dataclass
class Target:
    """A TF-Serving-compatible REST (and maybe gRPC) endpoint, and its model dir when we know it."""

    url: str
    model: str
    grpc: str | None = None
    model_dir: Path | None = None
    session: requests.Session = field(default_factory=requests.Session)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.url + path, timeout=30, **kwargs)

    def post(self, path: str, body=None, **kwargs) -> requests.Response:
        return self.session.post(self.url + path, json=body, timeout=30, **kwargs)

    def predict(self, rows=ROWS, version: int | None = None) -> list:
        path = f"/v1/models/{self.model}" + (f"/versions/{version}" if version is not None else "") + ":predict"
        response = self.post(path, {"instances": rows})
        assert response.status_code == 200, response.text
        return response.json()["predictions"]

    def statuses(self) -> dict[int, dict]:
        response = self.get(f"/v1/models/{self.model}")
        assert response.status_code == 200, response.text
        return {int(s["version"]): s for s in response.json()["model_version_status"]}

    def latest(self) -> int:
        return max(v for v, s in self.statuses().items() if s["state"] == "AVAILABLE")

    def wait_for(self, condition, seconds: float = 30, what: str = "condition"):
        """Poll ``condition(self)`` until it returns something truthy."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                result = condition(self)
            except (AssertionError, requests.RequestException, ValueError):
                result = None
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {what}; status: {self.get(f'/v1/models/{self.model}').text}"
                )
            time.sleep(0.1)


class Models:
    """Model A and model B as SavedModels, with their in-process answers (the expected values)."""

    def __init__(self, root: Path):
        from modelops.trainer.model import network as model

        self._model = model
        self.root = root
        self.paths = {}
        for name, seed in (("a", 1), ("b", 2)):
            self.paths[name] = root / name
            model.export(model.build(learning_rate=0.01, seed=seed), self.paths[name])
        self._cache: dict[Path, np.ndarray] = {}

    def expected(self, path: Path, rows=ROWS) -> list:
        """What the SavedModel at ``path`` answers in-process, through its serving signature."""
        key = Path(path).resolve()
        if key not in self._cache:
            self._cache[key] = self._model.load_signature(key)
        return self._model.predict(self._cache[key], np.asarray(rows)).tolist()

    def stage(self, name: str, base: Path, version: int) -> Path:
        """Copy model ``name`` next to where ``version`` goes, under a non-numeric name."""
        staging = base / f".staging-{version}"
        shutil.copytree(self.paths[name], staging)
        return staging

    def publish(self, name: str, base: Path, version: int) -> Path:
        """Copy model ``name`` to ``base/version`` the safe way: a non-numeric sibling, then rename."""
        return self.stage(name, base, version).rename(base / str(version))


def close(a: list, b: list, tol: float = 1e-5) -> bool:
    return np.allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), atol=tol, rtol=0)


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> Models:
    return Models(tmp_path_factory.mktemp("savedmodels"))


def remote_target() -> Target:
    model_dir = os.environ.get("TF_SERVING_MODEL_DIR")
    return Target(
        REMOTE_URL.rstrip("/"),
        os.environ["TF_SERVING_MODEL"],
        os.environ.get("TF_SERVING_GRPC"),
        Path(model_dir) if model_dir else None,
    )


@pytest.fixture(scope="session")
def served(models, tmp_path_factory):
    """The read-only target most tests share: versions 1 (model A) and 2 (model B) on disk, so 2 serves."""
    if REMOTE_URL:
        yield remote_target()
        return
    base = tmp_path_factory.mktemp("served")
    models.publish("a", base, 1)
    models.publish("b", base, 2)
    server = Serving(base, MODEL, grpc=True)
    try:
        server.wait_listening()
        yield Target(f"http://127.0.0.1:{server.rest_port}", server.model_name, f"127.0.0.1:{server.grpc_port}", base)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def expected(served, models):
    """In-process answers of the version ``served`` serves, or None when its model dir is unknown."""
    if served.model_dir is None:
        return None
    return models.expected(served.model_dir / str(served.latest()))


@pytest.fixture(scope="session")
def zoo(tmp_path_factory):
    """A server started with ``--model_config_file`` on ``saved_models.write_zoo``'s models; the
    target's ``model`` is ``half_plus_n`` (versions 123 and 124, labels stable and canary)."""
    from tests.localserving.saved_models import write_zoo

    zoo_url = os.environ.get("TF_SERVING_ZOO_URL")
    if zoo_url:
        yield Target(zoo_url.rstrip("/"), "half_plus_n", os.environ.get("TF_SERVING_ZOO_GRPC"))
        return
    if REMOTE_URL:
        pytest.skip("TF_SERVING_URL is set but TF_SERVING_ZOO_URL is not (see tests/localserving/saved_models.py)")
    root = tmp_path_factory.mktemp("zoo")
    server = Serving(root, "unused", "--model_config_file", str(write_zoo(root)), grpc=True)
    try:
        server.wait_listening()
        yield Target(f"http://127.0.0.1:{server.rest_port}", "half_plus_n", f"127.0.0.1:{server.grpc_port}", root)
    finally:
        server.stop()
