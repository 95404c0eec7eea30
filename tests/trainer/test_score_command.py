"""``retrain_pipeline.py score`` against the project's real serving server and SavedModels, side by side
with the frontend's upload and CSV ``/predict`` under gunicorn: the same answers, in input order."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import random
import subprocess
import sys

import pytest
import requests

from harness import REPO
from harness.processes import Serving, frontend, wait_until
from harness.project import write_config
from harness.servers import free_port
from tests.localserving.saved_models import PENGUINS_SCHEMA, SPECIES, penguins

pytestmark = pytest.mark.slow
MODEL = "simple_classifier"
BROKEN = {20_000: ["broken-blank", "", "0.5", "north"], 50_000: ["broken-word", "abc", "1", "south"],
          70_000: ["broken-extra", "0.1", "0.2", "east", "surplus"], 90_000: ["broken-nan", "NaN", "1", "west"]}


def _score(config, *args, tf_host: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "retrain_pipeline.py"), "--config", str(config), "score", *args],
                          input=stdin, capture_output=True, timeout=300, env={**os.environ, "TF_HOST": tf_host})


def _demo_file(path, rows: int = 100_000) -> list[list[str]]:
    rng = random.Random(31)
    table = [["customer", "x1", "x2", "region"]]  # 'customer' and 'region' are passed through
    for i in range(rows):
        table.append(BROKEN.get(i) or [f"c{i}", f"{rng.uniform(-3, 3):.4f}", f"{rng.uniform(-3, 3):.4f}", "north"])
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(table)
    return table


@pytest.fixture
def demo(tmp_path):
    from modelops.trainer.model import network as model

    config = write_config(tmp_path)
    model.export(model.build(learning_rate=0.01, seed=3), tmp_path / "models" / "1")
    server = Serving(tmp_path / "models", MODEL).wait_listening()
    yield tmp_path, config, server
    server.stop()


def test_the_command_the_upload_and_the_csv_api_score_100000_rows_alike(demo):
    root, config, server = demo
    table = _demo_file(root / "week.csv")
    done = _score(config, str(root / "week.csv"), "-o", str(root / "week.scored.csv"), tf_host=server.url)
    assert done.returncode == 4, done.stderr.decode()  # some rows had errors
    summary = done.stderr.decode()
    assert "scored 99996 of 100000 rows with model version 1; 4 rows with errors" in summary
    assert "row 20001: x1 is required but missing" in summary
    command = (root / "week.scored.csv").read_bytes()
    out = list(csv.DictReader(io.StringIO(command.decode())))
    assert [r["customer"] for r in out] == [row[0] for row in table[1:]]  # every row, input order
    assert all(r["region"] for r in out)  # the extra column is passed through
    marked = {r["customer"]: r["error"] for r in out if r["error"]}
    assert set(marked) == {row[0] for row in BROKEN.values()}
    assert "'abc'" in marked["broken-word"] and "5 values" in marked["broken-extra"]
    assert all(r["class"] in ("0", "1") and r["model_version"] == "1" for r in out if not r["error"])

    with frontend(server.url, MODEL, config, root, workers=1) as url:
        wait_until(lambda: requests.get(f"{url}/readyz", timeout=10).status_code == 200, seconds=90,
                   what="the frontend ready")
        body = (root / "week.csv").read_bytes()
        api = requests.post(f"{url}/predict", data=body, headers={"Content-Type": "text/csv"}, timeout=300)
        upload = requests.post(f"{url}/score", files={"file": ("week.csv", body, "text/csv")}, timeout=300)
        sample = [[float(r["x1"]), float(r["x2"])] for r in out[:500] if not r["error"]]
        plain = requests.post(f"{url}/predict", json={"instances": sample}, timeout=60)
    assert api.status_code == upload.status_code == plain.status_code == 200
    assert api.content == command and upload.content == command  # the same answers, byte for byte
    assert api.headers["X-Model-Version"] == "1" and api.headers["X-Row-Errors"] == "4"
    assert [p[0] for p in plain.json()["predictions"]] == \
        [float(r["probability_1"]) for r in out[:500] if not r["error"]]


def test_stdin_gzip_and_an_unreachable_serving(demo):
    root, config, server = demo
    table = _demo_file(root / "small.csv", rows=300)
    packed = gzip.compress((root / "small.csv").read_bytes())
    (root / "small.csv.gz").write_bytes(packed)
    to_stdout = _score(config, "-", tf_host=server.url, stdin=(root / "small.csv").read_bytes())
    gz = _score(config, str(root / "small.csv.gz"), "-o", str(root / "out.csv.gz"), tf_host=server.url)
    assert to_stdout.returncode == gz.returncode == 0  # 300 good rows (none of BROKEN's positions)
    assert gzip.decompress((root / "out.csv.gz").read_bytes()) == to_stdout.stdout
    assert to_stdout.stdout.count(b"\n") == len(table)  # the header and every row, no summary on stdout
    down = _score(config, str(root / "small.csv"), tf_host=f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 5 and b"not reachable" in down.stderr and down.stdout == b""
    missing = _score(config, str(root / "nope.csv"), tf_host=server.url)
    assert missing.returncode == 2 and b"cannot read" in missing.stderr


def test_a_named_schema_marks_an_unknown_category_and_scores_the_rest(tmp_path):
    config = write_config(tmp_path, **PENGUINS_SCHEMA)
    penguins(tmp_path / "models" / "1")
    server = Serving(tmp_path / "models", MODEL).wait_listening()
    try:
        (tmp_path / "p.csv").write_text("sex,island,bill_length_mm,note\nmale,Biscoe,39.1,a\n,Atlantis,40,b\n"
                                        "female,Dream,,c\nfemale,Dream,99,d\n")
        done = _score(config, str(tmp_path / "p.csv"), tf_host=server.url)
        direct = requests.post(f"{server.url}/v1/models/{MODEL}:predict", timeout=30, data=json.dumps(
            {"instances": [{"island": "Biscoe", "bill_length_mm": 39.1, "sex": "male"}]})).json()["predictions"][0]
    finally:
        server.stop()
    assert done.returncode == 4, done.stderr.decode()
    out = list(csv.DictReader(io.StringIO(done.stdout.decode())))
    assert [r["note"] for r in out] == ["a", "b", "c", "d"]
    assert out[0]["class"] == direct["class"]
    assert [float(out[0][f"probability_{s}"]) for s in SPECIES] == pytest.approx(direct["probabilities"], abs=1e-6)
    assert out[1]["error"].startswith("island must be one of Biscoe, Dream, Torgersen, got 'Atlantis'")
    assert out[2]["error"] == "" and out[2]["class"] in SPECIES  # a blank optional value is scored
    assert out[3]["error"].startswith("bill_length_mm must be at most 70")
