"""Fixtures for the frontend: a project directory, a fake TF Serving, the app and its client.

``FakeServing`` answers like TF Serving's REST API (status and versioned predict, with TF
Serving's error shapes) and can be switched into failure modes. Tests inject it as the client's
``requests`` session; ``fake_upstream`` serves the same fake over real HTTP for gunicorn and the
browser.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from prometheus_client import CollectorRegistry

from harness.servers import QuietHandler, http_server
from modelops.core import history
from modelops.core.config import load_config
from modelops.core.store import ModelStore
from modelops.core.tfserving_client import Response
from modelops.web import create_app

REPO = Path(__file__).resolve().parents[2]
MODEL = "simple_classifier"


def probability(x1: float, x2: float) -> float:
    """What the fake model answers: a logistic curve over x1 + x2."""
    return 1.0 / (1.0 + math.exp(-max(-700.0, min(700.0, x1 + x2))))


ISLANDS = ("Biscoe", "Dream", "Torgersen")
SPECIES = ("Adelie", "Chinstrap", "Gentoo")


def named_answer(instance: dict) -> dict:
    """What the fake answers a named (schema) instance: the island's species at 0.7, the others 0.15."""
    index = ISLANDS.index(instance["island"]) if instance.get("island") in ISLANDS else 0
    probabilities = [0.7 if i == index else 0.15 for i in range(len(SPECIES))]
    return {"probabilities": probabilities, "class": SPECIES[index]}


def answer(row) -> list | dict:
    return named_answer(row) if isinstance(row, dict) else [probability(*row)]


def explain_answer(row) -> dict:
    """What the fake's ``explain`` signature answers: each value (a category: its position) / 10."""
    values = list(row.values()) if isinstance(row, dict) else row
    attributions = [float(v) / 10 if isinstance(v, int | float) else ISLANDS.index(v) / 10 - 0.1
                    if v in ISLANDS else 0.0 for v in values]
    return {"attributions": attributions, "prediction": 0.5 + sum(attributions), "baseline_prediction": 0.5,
            "explained_class": "1" if isinstance(row, list) else named_answer(row)["class"]}


@dataclass
class FakeServing:
    """TF Serving's REST behaviour for one model; ``mode`` makes it fail in one chosen way."""

    versions: dict[int, str] = field(default_factory=lambda: {1: "AVAILABLE"})
    mode: str | None = None  # "down", "timeout", "error500", "reject400", "garbage"
    calls: list[tuple[str, str]] = field(default_factory=list)
    instances: list = field(default_factory=list)  # every predict's instances, as sent

    def handle(self, method: str, path: str, body: bytes | None) -> tuple[int, dict]:
        self.calls.append((method, path))
        if self.mode == "error500":
            return 500, {"error": "Internal: kernel exploded"}
        base = f"/v1/models/{MODEL}"
        if method == "GET" and re.fullmatch(r"/v1/models/[^/:]+", path):
            if path != base or not self.versions:
                return 404, {"error": f"Could not find any versions of model {path.rsplit('/', 1)[1]}"}
            entries = [
                {"version": str(v), "state": s, "status": {"error_code": "OK", "error_message": ""}}
                for v, s in sorted(self.versions.items(), reverse=True)
            ]
            return 200, {"model_version_status": entries}
        match = re.fullmatch(rf"{base}(?:/versions/(\d+))?:predict", path)
        if method == "POST" and match:
            if self.mode == "reject400":
                return 400, {"error": "Expecting tensor size: 2 but got: 3"}
            available = [v for v, s in self.versions.items() if s == "AVAILABLE"]
            wanted = int(match.group(1)) if match.group(1) else max(available, default=None)
            if wanted is None or wanted not in available:
                return 404, {"error": f"Servable not found for request: Specific({MODEL}, {wanted})"}
            request = json.loads(body)
            rows = request["instances"] if "instances" in request else request["inputs"]  # the packed matrix
            self.instances.append(rows)
            if request.get("signature_name") == "explain":
                return 200, {"predictions": [explain_answer(row) for row in rows]}
            if request.get("signature_name") == "explain_class":  # the row's inputs plus class_index
                return 200, {"predictions": [{**explain_answer(row.get("x") or {k: v for k, v in row.items()
                                                                                   if k != "class_index"}),
                                              "explained_class": str(row["class_index"])} for row in rows]}
            return 200, {"predictions" if "instances" in request else "outputs": [answer(row) for row in rows]}
        return 400, {"error": f"Malformed request: {method} {path}"}

    # the transport interface the client uses (KeepAliveSession.request)
    def request(self, method, url, data=None, headers=None, timeout=None):
        if self.mode == "down":
            raise ConnectionRefusedError(111, "Connection refused")
        if self.mode == "timeout":
            raise TimeoutError("timed out")
        status, body = self.handle(method, urlsplit(url).path, data)
        return Response(status, "", b"not json at all" if self.mode == "garbage" else json.dumps(body).encode())


@dataclass
class Project:
    """A project root with its own config.json, models/ and runs/history.jsonl."""

    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def cfg(self):
        return load_config(self.config_path)

    def add_version(self, version: int, accuracy: float, **extra) -> None:
        """Publish an (empty) model version with a metrics.json in the trainer's format."""
        store = ModelStore(self.cfg.models_dir)
        candidate = self.root / f"candidate-{version}"
        candidate.mkdir()
        metrics = {
            "model_name": MODEL,
            "version": version,
            "test_accuracy_percent": accuracy,
            "training_loss": 0.05,
            "trained_at": "2025-11-20T01:58:00Z",
            "promoted_at": "2025-11-20T02:00:00Z",
            "run_id": f"run-{version}",
            "dataset": {
                "rows": 2000,
                "train_rows": 1600,
                "eval_rows": 400,
                "positive_fraction": 0.5,
                "fingerprint": "abc",
                "files": [],
            },
            "champion": None,
            "gate": {"promote": True, "reasons": ["first model"], "threshold_percent": 97.0},
            "config": {},
            **extra,
        }
        store.publish(candidate, version, metrics)
        shutil.rmtree(candidate)

    def record(self, event: str, version: int | None, accuracy: float | None, **extra) -> dict:
        fields = {
            "model_name": MODEL,
            "version": version,
            "accuracy_percent": accuracy,
            "threshold_percent": 97.0,
            "champion_version": None,
            "champion_accuracy_percent": None,
            "eval_rows": 400,
            "data_fingerprint": "abc",
            "reasons": [],
            "run_id": f"run-{version}",
        }
        fields.update(extra)
        return history.append(self.cfg.history_path, event, **fields)


@pytest.fixture
def project(tmp_path) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "config.json", root / "config.json")
    return Project(root)


@pytest.fixture
def fake_serving() -> FakeServing:
    return FakeServing()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def make_app(project, fake_serving, registry):
    """``create_app`` on the test project with the fake serving, plus any ``overrides``."""

    def make(**overrides):
        return create_app(
            {
                "TESTING": True,
                "MODELOPS_CONFIG": project.config_path,
                "SERVING_SESSION": fake_serving,
                "METRICS_REGISTRY": registry,
                "TF_HOST": "http://tfserving.test:8501",
                "MODEL_NAME": MODEL,
                **overrides,
            }
        )

    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


# --- real processes: a fake upstream over HTTP, gunicorn ---


@pytest.fixture
def fake_upstream(fake_serving):
    """``fake_serving`` behind a real keep-alive HTTP server; yields its base URL."""

    class Handler(QuietHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # one packet per answer: no delayed-ACK stalls

        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            status, body = fake_serving.handle(self.command, self.path, self.rfile.read(length) if length else None)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

    with http_server(Handler) as url:
        yield url


# What the trainer stores for a version promoted over a champion: the gate's evidence (one slice row
# damaged, as a page must survive) and the lineage.
GATE_EVIDENCE = {
    "promote": True, "reasons": ["no significant regression"], "threshold_percent": 97.0,
    "comparison": {"method": "exact McNemar (two-sided)", "rows": 480, "candidate_only_correct": 2,
                   "champion_only_correct": 8, "candidate_percent": 97.5, "champion_percent": 98.75,
                   "difference_percent": -1.25, "ci95_percent": [-2.6538, 0.1635], "p_value": 0.109375,
                   "significance": 0.05},
    "slices": [{"name": "x1 < 0", "rows": 30, "candidate_percent": 90.0, "champion_percent": 100.0, "p_value": 0.25,
                "verdict": "not judged (fewer than gate.min_slice_rows=50 rows)"},
               {"name": "x1 >= 0", "rows": 450, "candidate_percent": 98.0, "champion_percent": 98.6667,
                "p_value": 0.3, "verdict": "ok"},
               {"name": "damaged", "rows": "many"}],
}
LINEAGE = {"code_version": {"git_commit": "0123456789abcdef", "dirty": True}, "python": "3.11.2",
           "tensorflow": "2.21.0", "keras": "3.12.0", "numpy": "2.3.4", "config_sha256": "ab" * 32,
           "dataset_fingerprint": "6faa25d79afbb61c", "dataset_files": ["bootstrap.csv", "sim-1.csv"],
           "eval_fingerprint": "0f0f", "seed": 42, "parent_version": 1}
