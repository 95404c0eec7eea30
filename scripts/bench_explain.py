"""``bench.py --explain``: a 1-row ``explain`` request's p50 against a plain predict's, same row,
on the local server (``"signature_name": "explain"``) and through the gunicorn frontend
(``"explain": true``, which adds one explain call to the predict), alternating in rounds; medians.
The model is the demo's, trained and exported by the pipeline's own code (so it has the signature)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import requests

from harness.measure import p50_rounds
from harness.processes import Serving, frontend, wait_until
from harness.project import write_config


def explain_overhead(http_load, model_name: str, threads: int, seconds: float, rounds: int) -> dict:
    from modelops.core.config import TrainConfig
    from modelops.core.store import ModelStore
    from modelops.trainer.data.synthetic import synthetic
    from modelops.trainer.data.tables import Split
    from modelops.trainer.model import training

    cases = {"serving predict": ("serving", None), "serving explain": ("serving", {"signature_name": "explain"}),
             "frontend predict": ("frontend", None), "frontend explain": ("frontend", {"explain": True})}
    p50s: dict[str, list[float]] = {name: [] for name in cases}
    with tempfile.TemporaryDirectory(prefix="modelops-bench-explain-") as scratch:
        work = Path(scratch)
        x, y = synthetic(2000, seed=1)
        training.train_candidate(TrainConfig(epochs=5), Split(x[:1600], y[:1600], x[1600:], y[1600:]), work / "export")
        shutil.copytree(work / "export", work / "serving" / "1")
        (work / "candidate").mkdir()
        ModelStore(work / "models").publish(work / "candidate", 1, {"version": 1})
        with Serving(work / "serving", model_name, f"--tensorflow_intra_op_parallelism={threads}",
                     f"--tensorflow_inter_op_parallelism={threads}") as serving:
            serving.wait_listening()
            with frontend(serving.url, model_name, write_config(work), work, workers=2) as front:
                wait_until(lambda: requests.get(f"{front}/readyz", timeout=5).ok, what="frontend")
                targets = {"serving": (serving.url, f"/v1/models/{model_name}:predict"),
                           "frontend": (front, "/predict")}
                for _ in range(rounds):
                    for name, (where, extra) in cases.items():
                        url, path = targets[where]
                        p50s[name].append(http_load(url, path, 1, 1, seconds, 0.0, extra)["p50_ms"])
    result = p50_rounds(p50s, seconds, rounds)
    medians = result["median_p50_ms"]
    ratios = {where: round(medians[f"{where} explain"] / medians[f"{where} predict"], 2)
              for where in ("serving", "frontend")}
    return {**result, "explain_vs_predict": ratios}
