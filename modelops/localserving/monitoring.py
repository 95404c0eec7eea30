"""TF Serving's Prometheus metrics, under TF Serving's own names and text format.

prometheus_client does not fit: it always writes ``# HELP`` lines and ``_total``/``_created``
series, while dashboards and alerts written for the stock server expect exactly
``:tensorflow:serving:request_count`` and friends with ``# TYPE`` lines only. So the three
metrics are kept here, under one lock, and rendered by hand.

The ``model_name`` label comes from the request URL, which any client writes: a name this
server does not serve is counted as ``unknown`` (one series), so a scanner cannot create a
series per name it tries.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path

from modelops.core.errors import ConfigError

DEFAULT_PATH = "/monitoring/prometheus/metrics"
REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
LOAD_ATTEMPT_COUNT = ":tensorflow:cc:saved_model:load_attempt_count"
# TF Serving's request latency buckets in microseconds: 10 * 1.8^k, 33 of them.
LATENCY_BUCKETS_US = tuple(10 * 1.8**k for k in range(33))
UNKNOWN_MODEL = "unknown"  # the model_name label of requests for a model this server does not serve

_BLOCK = re.compile(r"prometheus_config\s*:?\s*\{(?P<body>[^}]*)\}")
_ENABLE = re.compile(r"\benable\s*:\s*(?P<value>\w+)")
_PATH = re.compile(r"""\bpath\s*:\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)')""")


def prometheus_path(config_file: str) -> str | None:
    """The metrics path a ``--monitoring_config_file`` enables, or None when it does not.

    The file is TF Serving's ASCII ``MonitoringConfig``:
    ``prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }``.
    """
    try:
        text = Path(config_file).read_text()
    except OSError as e:
        raise ConfigError(f"--monitoring_config_file: cannot read {config_file}: {e}") from e
    block = _BLOCK.search(text)
    if block is None:
        return None
    enable = _ENABLE.search(block["body"])
    if enable is None or enable["value"].lower() not in ("true", "t", "1"):
        return None
    path = _PATH.search(block["body"])
    return (path and (path["dq"] if path["dq"] is not None else path["sq"])) or DEFAULT_PATH


class Metrics:
    """Counters and the latency histogram that REST, gRPC and the version loader update."""

    def __init__(self) -> None:
        self._knows: Callable[[str], bool] = lambda _name: False  # until label_models() says
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = {}
        self._loads: dict[tuple[str, str], int] = {}
        # (model_name, API, entrypoint) -> [bucket counts..., sum_us, count]
        self._latency: dict[tuple[str, str, str], list[float]] = {}

    def request(self, model_name: str, status: str, api: str, entrypoint: str, seconds: float) -> None:
        """Count one request; like TF Serving, only successful ones enter the latency histogram."""
        if model_name and not self._knows(model_name):  # "": the request named no model
            model_name = UNKNOWN_MODEL
        with self._lock:
            key = (model_name, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            if status != "OK":
                return
            series = self._latency.setdefault((model_name, api, entrypoint), [0] * (len(LATENCY_BUCKETS_US) + 2))
            micros = seconds * 1e6
            for i, bound in enumerate(LATENCY_BUCKETS_US):
                if micros <= bound:
                    series[i] += 1
            series[-2] += micros
            series[-1] += 1

    def label_models(self, knows: Callable[[str], bool]) -> None:
        """Label request counts by model name only for names ``knows``; the rest count as ``unknown``."""
        self._knows = knows

    def load_attempt(self, model_path: str, success: bool) -> None:
        with self._lock:
            key = (model_path, "success" if success else "fail")
            self._loads[key] = self._loads.get(key, 0) + 1

    def render(self) -> str:
        """The Prometheus text exposition, ``# TYPE`` lines only, as TF Serving writes it."""
        lines: list[str] = []
        with self._lock:
            if self._requests:
                lines.append(f"# TYPE {REQUEST_COUNT} counter")
                for (model, status), n in sorted(self._requests.items()):
                    lines.append(f"{REQUEST_COUNT}{_labels(model_name=model, status=status)} {n}")
            if self._latency:
                lines.append(f"# TYPE {REQUEST_LATENCY} histogram")
                for (model, api, entrypoint), series in sorted(self._latency.items()):
                    labels = {"model_name": model, "API": api, "entrypoint": entrypoint}
                    for bound, count in zip(LATENCY_BUCKETS_US, series, strict=False):
                        lines.append(f"{REQUEST_LATENCY}_bucket{_labels(**labels, le=f'{bound:g}')} {count}")
                    lines.append(f"{REQUEST_LATENCY}_bucket{_labels(**labels, le='+Inf')} {series[-1]:g}")
                    lines.append(f"{REQUEST_LATENCY}_sum{_labels(**labels)} {series[-2]:g}")
                    lines.append(f"{REQUEST_LATENCY}_count{_labels(**labels)} {series[-1]:g}")
            if self._loads:
                lines.append(f"# TYPE {LOAD_ATTEMPT_COUNT} counter")
                for (path, status), n in sorted(self._loads.items()):
                    lines.append(f"{LOAD_ATTEMPT_COUNT}{_labels(model_path=path, status=status)} {n}")
        return "\n".join(lines) + "\n"


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}"
