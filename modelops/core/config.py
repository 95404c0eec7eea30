"""Typed, validated configuration from ``config.json``.

Every section is a frozen dataclass; each field carries its allowed range. Loading rejects
unknown keys (with a did-you-mean hint), wrong types and out-of-range values, always naming the
dotted key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import math
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from croniter import croniter

from modelops.core.errors import ConfigError
from modelops.core.paths import REPO_ROOT
from modelops.core.schema import DEFAULT_MISSING_VALUES, DEMO_SCHEMA, Schema

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

CONFIG_ENV = "MODELOPS_CONFIG"
# Where the state (models/, data/, runs/, logs) lives when not next to config.json: compose mounts the
# config's folder read-only and the state on volumes (docs/your-data.md, "Under Docker Compose").
STATE_ENV = "MODELOPS_STATE_DIR"
SCHEMA_KEYS = ("features", "label")  # top-level sections parsed by modelops.core.schema
CLASS_METRICS = ("accuracy", "balanced_accuracy", "macro_f1")  # gate.metric for a class label
NUMBER_METRICS = ("rmse", "mae", "r2")  # gate.metric for a number label (rmse the default)


_Section = TypeVar("_Section", bound="DataclassInstance")


def _range(lo: float | None = None, hi: float | None = None, choices: tuple[str, ...] | None = None) -> dict[str, Any]:
    return {"lo": lo, "hi": hi, "choices": choices}


@dataclass(frozen=True)
class SliceConfig:
    """Rows grouped by one feature: each category value a slice, or numeric ranges cut at ``edges``."""

    feature: str = ""
    edges: tuple[float, ...] = ()


@dataclass(frozen=True)
class GateConfig:
    """The promotion rules (docs/gate.md): an absolute floor, and a paired test against the champion."""

    min_accuracy_percent: float = field(default=97.0, metadata=_range(0.0, 100.0))
    max_regression_percent: float = field(default=1.0, metadata=_range(0.0, 100.0))
    min_eval_rows: int = field(default=100, metadata=_range(1))
    # what min_accuracy_percent and max_regression_percent measure (docs/your-data.md): for imbalanced classes
    # balanced_accuracy or macro_f1 do not reward always answering the biggest class
    metric: str = field(default="accuracy", metadata=_range(choices=CLASS_METRICS + NUMBER_METRICS))
    significance: float = field(default=0.05, metadata=_range(1e-9, 1.0))
    require_improvement: bool = False
    slices: tuple[SliceConfig, ...] = ()
    min_slice_rows: int = field(default=50, metadata=_range(1))
    # a feature's share of the importance (docs/explain.md) moving more than this vs the champion:
    # a warning in the run log; more than max_importance_shift: a gate rule (1.0, the default, is off)
    warn_importance_shift: float = field(default=0.2, metadata=_range(0.0, 1.0))
    max_importance_shift: float = field(default=1.0, metadata=_range(0.0, 1.0))
    # a number label's absolute bounds (docs/your-data.md), one per metric; unset: no bound
    max_rmse: float = field(default=math.inf, metadata=_range(0.0))
    max_mae: float = field(default=math.inf, metadata=_range(0.0))
    min_r2: float = field(default=-math.inf, metadata=_range(hi=1.0))


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = field(default=20, metadata=_range(1, 10_000))
    batch_size: int = field(default=32, metadata=_range(1, 1_000_000))
    learning_rate: float = field(default=0.01, metadata=_range(1e-9, 10.0))
    seed: int = field(default=42, metadata=_range(0, 2**31 - 1))
    module: str = ""  # a Python file defining build_model(input_dim, num_classes, params); "" = the built-in MLP
    params: dict[str, Any] = field(default_factory=dict)  # passed to the module's build_model as they are


@dataclass(frozen=True)
class WindowConfig:
    """Which accepted batches a retrain uses: the newest ones, up to both limits (docs/data.md)."""

    max_batches: int = field(default=52, metadata=_range(1))
    max_rows: int = field(default=100_000, metadata=_range(1))


@dataclass(frozen=True)
class DataConfig:
    eval_percent: float = field(default=20.0, metadata=_range(1.0, 90.0))
    bootstrap_rows: int = field(default=2000, metadata=_range(10, 10_000_000))
    min_batch_rows: int = field(default=1, metadata=_range(1))
    max_batch_rows: int = field(default=100_000, metadata=_range(1))
    max_abs_feature: float = field(default=1000.0, metadata=_range(1e-9))
    max_batch_bytes: int = field(default=64 * 1024 * 1024, metadata=_range(1))
    settle_seconds: float = field(default=5.0, metadata=_range(0.0, 3600.0))
    window: WindowConfig = WindowConfig()
    missing_values: tuple[str, ...] = DEFAULT_MISSING_VALUES  # cells read as a missing value (besides blank)


@dataclass(frozen=True)
class TriggersConfig:
    """Retrain early on evidence (docs/drift.md): off unless ``min_new_rows`` or ``on_drift`` is set."""

    min_new_rows: int = field(default=0, metadata=_range(0))  # 0: never on a row count
    on_drift: bool = False
    check_seconds: float = field(default=60.0, metadata=_range(1.0, 86400.0))
    min_interval_seconds: float = field(default=3600.0, metadata=_range(0.0, 30 * 86400.0))

    @property
    def enabled(self) -> bool:
        return self.min_new_rows > 0 or self.on_drift


@dataclass(frozen=True)
class ScheduleConfig:
    cron: str = "0 2 * * 0"
    bootstrap_on_start: bool = True
    # A run (manual, cron or scheduled) that lasts longer ends as failed (timed out).
    max_run_seconds: float = field(default=14400.0, metadata=_range(1.0, 7 * 86400.0))
    triggers: TriggersConfig = TriggersConfig()


@dataclass(frozen=True)
class DriftConfig:
    """How batches and live traffic are compared with the serving version's training rows (docs/drift.md)."""

    bins: int = field(default=10, metadata=_range(2, 100))
    threshold: float = field(default=0.2, metadata=_range(0.0, 100.0))
    min_rows: int = field(default=200, metadata=_range(1))
    live_window: int = field(default=1000, metadata=_range(10, 1_000_000))


@dataclass(frozen=True)
class VerifyConfig:
    timeout_seconds: float = field(default=30.0, metadata=_range(0.1, 3600.0))
    tolerance: float = field(default=1e-4, metadata=_range(0.0, 1.0))
    rows: int = field(default=50, metadata=_range(1, 100_000))
    on_unreachable: str = field(default="warn", metadata=_range(choices=("warn", "fail")))
    unreachable_seconds: float = field(default=10.0, metadata=_range(0.0, 3600.0))


@dataclass(frozen=True)
class RolloutConfig:
    """How a gated candidate earns live traffic (docs/rollout.md): ``direct`` serves it at once."""

    mode: str = field(default="direct", metadata=_range(choices=("direct", "shadow", "canary")))
    shadow_fraction: float = field(default=0.1, metadata=_range(0.0, 1.0))
    canary_percent: float = field(default=10.0, metadata=_range(0.0, 100.0))
    min_requests: int = field(default=200, metadata=_range(1, 10_000_000))
    min_seconds: float = field(default=300.0, metadata=_range(0.0, 30 * 86400.0))
    max_seconds: float = field(default=86400.0, metadata=_range(1.0, 30 * 86400.0))
    on_timeout: str = field(default="abort", metadata=_range(choices=("promote", "abort")))
    min_agreement: float = field(default=0.98, metadata=_range(0.0, 1.0))
    max_error_rate_increase: float = field(default=0.01, metadata=_range(0.0, 1.0))
    max_p99_latency_ratio: float = field(default=2.0, metadata=_range(1.0, 1000.0))
    serving_config_file: str = "models/models.config"
    serving_base_path: str = ""  # the models directory as TF Serving sees it; "" = the local path
    # addresses or networks of proxies whose X-Client-Id header picks the canary; anyone else is their address
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReproduceConfig:
    """``retrain_pipeline.py reproduce N``: how far the retrained accuracy may be from the recorded one."""

    tolerance_percent: float = field(default=0.5, metadata=_range(0.0, 100.0))


@dataclass(frozen=True)
class RetentionConfig:
    """What a retrain prunes at its end (modelops/trainer/retention.py, docs/data.md); 0 keeps everything."""

    keep_versions: int = field(default=0, metadata=_range(0, 1_000_000))  # served/previous/rollout always kept
    accepted_days: float = field(default=0.0, metadata=_range(0.0, 36_500.0))  # window batches always kept
    cache_days: float = field(default=0.0, metadata=_range(0.0, 36_500.0))


@dataclass(frozen=True)
class ScoreConfig:
    """Scoring a file (docs/scoring-files.md): the page's upload and CSV ``/predict`` body limit."""

    max_upload_mb: float = field(default=20.0, metadata=_range(0.001, 10240.0))


@dataclass(frozen=True)
class Config:
    model_name: str = "simple_classifier"
    gate: GateConfig = GateConfig()
    train: TrainConfig = TrainConfig()
    data: DataConfig = DataConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    verify: VerifyConfig = VerifyConfig()
    rollout: RolloutConfig = RolloutConfig()
    reproduce: ReproduceConfig = ReproduceConfig()
    drift: DriftConfig = DriftConfig()
    retention: RetentionConfig = RetentionConfig()
    score: ScoreConfig = ScoreConfig()
    schema: Schema = field(default=DEMO_SCHEMA, metadata={"internal": True})  # top-level features + label
    # The state's folder: $MODELOPS_STATE_DIR, else config.json's folder.
    root: Path = field(default=Path("."), metadata={"internal": True})
    config_dir: Path | None = field(default=None, metadata={"internal": True})  # config.json's folder (None: root)
    # The config file's exact text: its sha256 and a copy go into each version's lineage.
    source_text: str = field(default="", metadata={"internal": True}, repr=False)

    # Where the pipeline keeps its state, all relative to the project root.
    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def history_path(self) -> Path:
        return self.runs_dir / "history.jsonl"

    @property
    def serving_config_path(self) -> Path:
        return self.root / self.rollout.serving_config_file

    @property
    def split_key_path(self) -> Path:
        return self.runs_dir / "split.key"

    @property
    def notifications_path(self) -> Path:
        return self.root / "notifications.log"

    @property
    def train_log_path(self) -> Path:
        return self.root / "last_train_log.txt"

    @property
    def train_module_path(self) -> Path | None:
        """The user's model file (``train.module``, relative to config.json), or None for the built-in MLP."""
        return (self.config_dir or self.root) / self.train.module if self.train.module else None


def default_config_path() -> Path:
    """``$MODELOPS_CONFIG`` if set, else ``config.json`` in the project root."""
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else REPO_ROOT / "config.json"


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate the config file; raise ConfigError naming the offending key."""
    path = Path(path) if path is not None else default_config_path()
    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except ConfigError as exc:  # a key given twice
        raise ConfigError(f"{path}: {exc}") from None
    sections = {key: raw.pop(key) for key in SCHEMA_KEYS if key in raw} if isinstance(raw, dict) else {}
    config = _build(Config, raw, prefix="", source=path)
    schema = Schema.from_config(sections.get("features"), sections.get("label"), config.data.missing_values, path)
    state = os.environ.get(STATE_ENV, "").strip()
    config = dataclasses.replace(config, schema=schema, root=Path(state).resolve() if state else path.resolve().parent,
                                 config_dir=path.resolve().parent, source_text=text)
    config = _metric_for_label(config, isinstance(raw.get("gate"), dict) and "metric" in raw["gate"], path)
    _check_cross_fields(config, path)
    return config


def _metric_for_label(config: Config, explicit: bool, source: Path) -> Config:
    """``gate.metric`` fits the label: rmse for a number unless rmse, mae or r2 is chosen (the shipped
    config.json's ``accuracy``, the default, counts as not chosen), a class metric for classes."""
    number = config.schema.label.is_number
    metric = config.gate.metric
    if number and metric in CLASS_METRICS:
        if explicit and metric != "accuracy":
            raise ConfigError(f"{source}: 'gate.metric' must be one of {', '.join(NUMBER_METRICS)} for a number "
                              f"label, got {json.dumps(metric)}")
        return dataclasses.replace(config, gate=dataclasses.replace(config.gate, metric="rmse"))
    if not number and metric in NUMBER_METRICS:
        raise ConfigError(f"{source}: 'gate.metric' {json.dumps(metric)} is for a number label; a class label "
                          f"takes one of {', '.join(CLASS_METRICS)}")
    return config


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """JSON objects as dicts, refusing a key given twice (json.loads would silently keep the last)."""
    seen: dict[str, object] = {}
    for key, value in pairs:
        if key in seen:
            raise ConfigError(f"key {key!r} is given twice in the same object: keep one")
        seen[key] = value
    return seen


def _build(cls: type[_Section], raw: object, prefix: str, source: Path) -> _Section:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: '{prefix.rstrip('.') or '<top level>'}' must be a JSON object")
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    hints = typing.get_type_hints(cls)  # the annotations are strings (postponed evaluation)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            hint = difflib.get_close_matches(key, [*fields, *SCHEMA_KEYS] if cls is Config else fields, n=1)
            suggestion = f" (did you mean '{prefix}{hint[0]}'?)" if hint else ""
            known = ", ".join(sorted([*fields, *SCHEMA_KEYS] if cls is Config else fields))
            raise ConfigError(f"{source}: unknown key '{prefix}{key}'{suggestion}; known keys: {known}")
        values[key] = _value(fields[key].metadata, hints[key], value, f"{prefix}{key}", source)
    return cls(**values)


def _value(metadata: Mapping[str, Any], kind: Any, value: Any, key: str, source: Path) -> Any:
    """``value`` checked against ``kind``, a field's type hint: a section, ``tuple[X, ...]``, an object, a scalar."""
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _build(kind, value, prefix=f"{key}.", source=source)
    if typing.get_origin(kind) is tuple:  # tuple[X, ...]: a JSON list of X
        item = typing.get_args(kind)[0]
        if not isinstance(value, list):
            raise ConfigError(f"{source}: '{key}' must be {'a list of strings' if item is str else 'a list'}, "
                              f"got {json.dumps(value)}")
        return tuple(_value({}, item, v, f"{key}[{i}]", source) for i, v in enumerate(value))
    if typing.get_origin(kind) is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{key}' must be a JSON object, got {json.dumps(value)}")
        return value
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, (int, float)) and not isinstance(value, bool),
        str: isinstance(value, str),
    }[kind]
    if not ok:
        names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
        raise ConfigError(f"{source}: '{key}' must be {names[kind]}, got {json.dumps(value)}")
    value = kind(value)
    if kind is float and not math.isfinite(value):
        raise ConfigError(f"{source}: '{key}' must be a finite number")
    lo, hi, choices = (metadata.get(k) for k in ("lo", "hi", "choices"))
    if lo is not None and value < lo or hi is not None and value > hi:
        bounds = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise ConfigError(f"{source}: '{key}' must be {bounds}, got {value}")
    if choices and value not in choices:
        raise ConfigError(f"{source}: '{key}' must be one of {', '.join(choices)}, got {json.dumps(value)}")
    return value


def _check_cross_fields(config: Config, source: Path) -> None:
    if not config.model_name or "/" in config.model_name or ":" in config.model_name:
        raise ConfigError(f"{source}: 'model_name' must be non-empty without '/' or ':'")
    if not croniter.is_valid(config.schedule.cron):
        raise ConfigError(f"{source}: 'schedule.cron' is not a valid cron expression: {config.schedule.cron!r}")
    if config.data.min_batch_rows > config.data.max_batch_rows:
        raise ConfigError(f"{source}: 'data.min_batch_rows' must not exceed 'data.max_batch_rows'")
    if config.data.window.max_rows < config.data.max_batch_rows:
        raise ConfigError(f"{source}: 'data.window.max_rows' must be at least 'data.max_batch_rows' "
                          f"({config.data.max_batch_rows}), so the newest batch always fits the window")
    _check_slices(config.gate.slices, config.schema, source)
    rollout = config.rollout
    if rollout.min_seconds >= rollout.max_seconds:
        raise ConfigError(f"{source}: 'rollout.min_seconds' must be less than 'rollout.max_seconds'")
    if rollout.mode == "shadow" and rollout.shadow_fraction == 0:
        raise ConfigError(f"{source}: 'rollout.shadow_fraction' must be above 0 when 'rollout.mode' is shadow")
    if rollout.mode == "canary" and rollout.canary_percent == 0:
        raise ConfigError(f"{source}: 'rollout.canary_percent' must be above 0 when 'rollout.mode' is canary")
    if not rollout.serving_config_file.strip() or rollout.serving_config_file.endswith("/"):
        raise ConfigError(f"{source}: 'rollout.serving_config_file' must name a file, like models/models.config")
    for proxy in rollout.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigError(f"{source}: 'rollout.trusted_proxies' must list IP addresses or networks "
                              f"(like 10.0.0.0/8), got {json.dumps(proxy)}") from None


def _check_slices(slices: tuple[SliceConfig, ...], schema: Schema, source: Path) -> None:
    """Each slice names a declared feature: a category is sliced by value (a date by month), a number by ``edges``."""
    known = schema.names
    for i, spec in enumerate(slices):
        key = f"gate.slices[{i}]"
        if spec.feature not in known:
            hint = difflib.get_close_matches(spec.feature, known, n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise ConfigError(f"{source}: '{key}.feature' must name a feature, got {json.dumps(spec.feature)}"
                              f"{suggestion}; features: {', '.join(known)}")
        numeric = schema.feature(spec.feature).numeric
        if numeric and not spec.edges:
            raise ConfigError(f"{source}: '{key}.edges' is needed for the number feature '{spec.feature}' "
                              "(ranges cut at these values, like [0, 1.5]); only a category is sliced by value")
        if not numeric and spec.edges:
            raise ConfigError(f"{source}: '{key}.edges' is only for number features; the category "
                              f"'{spec.feature}' is sliced by value: remove 'edges'")
        if any(b <= a for a, b in zip(spec.edges, spec.edges[1:], strict=False)):
            raise ConfigError(f"{source}: '{key}.edges' must be strictly increasing, got {list(spec.edges)}")
