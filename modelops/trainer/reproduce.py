"""``retrain_pipeline.py reproduce N``: retrain version N from its lineage and compare accuracies.

The inputs are exactly what the lineage recorded: the kept copy of the config file (checked
against its sha256, so the same schema, seed, epochs, split share and ``gate.metric``), the same
accepted batches read with that schema (checked against the dataset fingerprint), the user's
``train.module`` file if any (checked against its sha256), and this installation's split key
(checked against the eval fingerprint, so the reproduction is graded on the same eval rows).
The candidate is trained in a scratch folder under ``runs/``, removed afterwards: nothing is
published and no lock is taken.
Inputs that are gone or damaged raise ReproduceError (exit 1) saying which; a reproduction
further from the recorded accuracy than ``reproduce.tolerance_percent`` exits 3.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from modelops.core import lineage
from modelops.core.config import Config, load_config
from modelops.core.errors import ConfigError, DataError, ReproduceError
from modelops.core.store import METRICS_FILE, RETIRED_DIR
from modelops.core.timestamps import run_id
from modelops.trainer import lineage as recorded_lineage
from modelops.trainer import retention
from modelops.trainer.data import holdout, windowed
from modelops.trainer.retrain.evaluation import train_and_evaluate
from modelops.trainer.retrain.runlog import RunLog

STEPS = ("inputs", "train", "evaluate")


@dataclass(frozen=True)
class Reproduction:
    version: int
    recorded_percent: float
    reproduced_percent: float
    eval_rows: int
    tolerance_percent: float
    metric: str  # gate.metric of the recorded run: what test_accuracy_percent measured
    changed: list[dict]  # code and library versions that differ from the recorded ones

    @property
    def difference_percent(self) -> float:
        return self.reproduced_percent - self.recorded_percent

    @property
    def within(self) -> bool:
        return abs(self.difference_percent) <= self.tolerance_percent

    def lines(self) -> list[str]:
        verdict = "reproduced" if self.within else "NOT reproduced"
        lines = [f"v{self.version} {self.metric}: recorded {self.recorded_percent:.2f}%, "
                 f"reproduced {self.reproduced_percent:.2f}% "
                 f"on the same {self.eval_rows} eval rows ({self.difference_percent:+.2f} points, "
                 f"reproduce.tolerance_percent {self.tolerance_percent:g}): {verdict}"]
        lines.extend(f"  note: {d['key']} is {_text(d['b'])} now, was {_text(d['a'])}" for d in self.changed)
        return lines


def _text(value) -> str:
    return lineage.describe_code(value) if isinstance(value, dict) else str(value)


def reproduce(config: Config, version: int, echo=print) -> Reproduction:
    """Retrain ``version`` from its lineage in a scratch folder and evaluate it on the same eval rows."""
    metrics, home = _find(config, version)
    recorded, recorded_score = metrics.get("lineage"), metrics.get("test_accuracy_percent")
    if not isinstance(recorded, dict):
        recorded = {}
    names = recorded.get("dataset_files")
    if not isinstance(names, list) or not isinstance(recorded_score, (int, float)) or not all(
            isinstance(recorded.get(k), str) for k in ("config_sha256", "dataset_fingerprint", "eval_fingerprint")):
        raise ReproduceError(f"v{version}'s {METRICS_FILE} in {home} has no complete lineage (damaged, or written "
                             "before lineage was recorded): it cannot be reproduced")
    scratch = config.runs_dir / f"reproduce-v{version}-{run_id()}"
    scratch.mkdir(parents=True)
    try:
        with RunLog(scratch / "reproduce.log", STEPS, echo) as log:
            run_config, split = _inputs(config, version, home, recorded, names, scratch)
            log.step("inputs", f"v{version}'s {len(names)} batch(es), config copy and eval rows "
                               f"({len(split.y_eval)}) match its lineage")
            evaluation = train_and_evaluate(run_config, split, scratch, f"v{version} again", log)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    now = recorded_lineage.environment()
    changed = [d for d in lineage.differences(recorded, now) if d["key"] in now]
    return Reproduction(version, float(recorded_score), evaluation.score, len(split.y_eval),
                        config.reproduce.tolerance_percent, run_config.gate.metric, changed)


def _find(config: Config, version: int) -> tuple[dict, Path]:
    """``metrics.json`` of a served, retired or rejected version, and the folder holding its config copy."""
    places = [(d / METRICS_FILE, d) for d in (config.models_dir / str(version),
                                              config.models_dir / RETIRED_DIR / str(version))]
    places += [(run / METRICS_FILE, run / "candidate") for run in sorted(config.runs_dir.glob(f"*-v{version}"))]
    for path, home in places:
        if not path.is_file():
            continue
        try:
            metrics = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ReproduceError(f"v{version}'s {path} cannot be read ({exc}): it cannot be reproduced") from None
        if not isinstance(metrics, dict):
            raise ReproduceError(f"v{version}'s {path} is not a JSON object: it cannot be reproduced")
        return metrics, home
    raise ReproduceError(f"no version {version}: neither served, retired nor kept as a rejected candidate in "
                         f"{config.runs_dir}{_pruned(config, 'version', [str(version)])}")


def _pruned(config: Config, kind: str, names: list) -> str:
    """What ``retention`` deleted of ``names``, said plainly (empty when it deleted none of them)."""
    when = retention.when_pruned(config, kind, [str(n) for n in names])
    listed = ", ".join(f"{'v' if kind == 'version' else ''}{n} on {t}" for n, t in sorted(when.items()))
    return f"; pruned by retention (config.json 'retention'): {listed}" if when else ""


def _inputs(config: Config, version: int, home: Path, recorded: dict, names: list, scratch: Path):
    """The config copy and the split of the recorded batches, each checked against the lineage."""
    copy = home / lineage.CONFIG_COPY
    try:
        text = copy.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReproduceError(f"v{version}'s config copy {copy} cannot be read ({exc})") from None
    if recorded_lineage.sha256(text) != recorded["config_sha256"]:
        raise ReproduceError(f"v{version}'s config copy {copy} was changed since training (sha256 differs)")
    (scratch / "config.json").write_text(text, encoding="utf-8")
    try:
        run_config = dataclasses.replace(load_config(scratch / "config.json"), root=config.root,
                                         config_dir=config.config_dir)
    except ConfigError as exc:
        raise ReproduceError(f"v{version}'s config copy no longer loads: {exc}") from None
    try:
        module = recorded_lineage.module_sha256(run_config)
    except OSError as exc:
        raise ReproduceError(f"v{version}'s train.module {run_config.train_module_path} cannot be read "
                             f"({exc})") from None
    if module != recorded.get("train_module_sha256"):
        raise ReproduceError(f"v{version}'s train.module {run_config.train_module_path} was changed since training "
                             "(sha256 differs)")
    try:
        dataset = windowed.load_batches(run_config, names)
    except DataError as exc:
        raise ReproduceError(f"v{version} cannot be reproduced: {exc}{_pruned(config, 'batch', names)}") from None
    if dataset.fingerprint != recorded["dataset_fingerprint"]:
        raise ReproduceError(f"v{version}'s batches changed since training: fingerprint {dataset.fingerprint}, "
                             f"recorded {recorded['dataset_fingerprint']}")
    if not config.split_key_path.is_file():
        raise ReproduceError(f"the split key {config.split_key_path} is gone: the eval rows cannot be rebuilt")
    split = holdout.split(dataset, run_config.data.eval_percent, holdout.split_key(config))
    if recorded_lineage.eval_fingerprint(split) != recorded["eval_fingerprint"]:
        raise ReproduceError(f"v{version}'s eval rows cannot be rebuilt: the split key {config.split_key_path} "
                             "changed since training")
    return run_config, split
