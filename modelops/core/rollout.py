"""Staged rollout, the pure part: state from the history, the decision on live evidence, the
serving config text. No I/O here (``rollout_control.py`` does it), and no numpy or TensorFlow:
the frontend reads the state through this module.

A rollout is a sequence of history records, so a restarted trainer or frontend resumes it::

    rollout-start    phase loading   candidate published beside the champion, not yet AVAILABLE
    rollout-advance  phase shadow    users answered by ``stable``; a fraction mirrored to the candidate
    rollout-advance  phase canary    a sticky share of clients answered by the candidate
    rollout-promote                  the candidate is ``stable``; the champion is unloaded
    rollout-abort                    the candidate is retired; ``stable`` never moved

``rollout.mode`` ``shadow`` runs the shadow phase only; ``canary`` runs shadow (when
``shadow_fraction`` > 0) then canary. Each phase decides after ``min_requests`` candidate
answers and ``min_seconds``; a phase that has not seen ``min_requests`` in ``max_seconds`` ends
by ``on_timeout``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from modelops.core.config import RolloutConfig
from modelops.core.history import Event
from modelops.core.timestamps import parse_iso

# The frontend's rollout metrics (declared in web/traffic.py); the trainer reads them back.
REQUESTS = "modelops_frontend_rollout_requests_total"  # {label, version, path=user|shadow, outcome=ok|error}
LATENCY = "modelops_frontend_rollout_latency_seconds"  # {label, version, path}, answered requests only
ROWS = "modelops_frontend_rollout_rows_total"  # {label, version, path, outcome}: the rows in those requests
SHADOW_ROWS = "modelops_frontend_shadow_rows_total"  # {version, result=agree|disagree}


@dataclass(frozen=True)
class Rollout:
    """A rollout in progress: champion ``stable``, ``candidate``, current ``phase`` since ``since`` (epoch s)."""

    stable: int
    candidate: int
    phase: str  # loading | shadow | canary
    since: float
    started: float


@dataclass(frozen=True)
class Evidence:
    """What the frontend measured for the current phase (candidate) and the champion (baseline)."""

    requests: int = 0  # candidate answers tried in this phase: mirrored pairs (shadow) or canary requests
    errors: int = 0
    baseline_requests: int = 0
    baseline_errors: int = 0
    rows: int = 0  # the rows in those requests: one client's 1,000-row requests weigh as what they are
    error_rows: int = 0
    baseline_rows: int = 0
    baseline_error_rows: int = 0
    compared: int = 0  # shadow rows compared, and how many got the same class from both
    agreed: int = 0
    p99_seconds: float | None = None
    baseline_p99_seconds: float | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def baseline_error_rate(self) -> float:
        return self.baseline_errors / self.baseline_requests if self.baseline_requests else 0.0

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    @property
    def p99_ratio(self) -> float | None:
        if self.p99_seconds is None or not self.baseline_p99_seconds:
            return None
        return self.p99_seconds / self.baseline_p99_seconds


@dataclass(frozen=True)
class Decision:
    action: str  # wait | advance | promote | abort
    reasons: tuple[str, ...]
    phase: str | None = None  # the next phase, when advancing


def state(records: list[dict[str, Any]]) -> Rollout | None:
    """The rollout in progress after ``records`` (oldest first), or None."""
    current: Rollout | None = None
    for r in records:
        event = r.get("event")
        try:
            if event == Event.ROLLOUT_START:
                at = parse_iso(r["time"])
                current = Rollout(int(r["stable_version"]), int(r["version"]), str(r["phase"]), at, at)
            elif event == Event.ROLLOUT_ADVANCE and current is not None and r.get("version") == current.candidate:
                current = replace(current, phase=str(r["phase"]), since=parse_iso(r["time"]))
            elif event in (Event.ROLLOUT_PROMOTE, Event.ROLLOUT_ABORT) or (
                    event == Event.ROLLBACK and current is not None and r.get("version") == current.candidate):
                current = None
        except (KeyError, TypeError, ValueError):
            continue  # a damaged record: skip it, as history.read skips damaged lines
    return current


def settled(records: list[dict[str, Any]]) -> int | None:
    """The version users stay on after the last rollout ended (the candidate if promoted, else the
    champion), until a later publish or rollback; TF Serving may still list the other one for a poll."""
    version = None
    for r in records:
        event = r.get("event")
        if event == Event.ROLLOUT_PROMOTE:
            version = r.get("version")
        elif event == Event.ROLLOUT_ABORT:
            version = r.get("stable_version")
        elif event in (Event.PROMOTE, Event.ROLLBACK, Event.ROLLOUT_START):
            version = None
    return version if isinstance(version, int) else None


def phases(cfg: RolloutConfig) -> tuple[str, ...]:
    """The live phases a candidate goes through in ``cfg.mode`` (none in ``direct``)."""
    if cfg.mode == "shadow":
        return ("shadow",)
    if cfg.mode == "canary":
        return ("shadow", "canary") if cfg.shadow_fraction > 0 else ("canary",)
    return ()


def next_phase(cfg: RolloutConfig, phase: str) -> str | None:
    """The phase after ``phase``; None when the next step is promotion."""
    order = ("loading", *phases(cfg))
    index = order.index(phase) if phase in order else len(order) - 1
    return order[index + 1] if index + 1 < len(order) else None


def decide(cfg: RolloutConfig, rollout: Rollout, evidence: Evidence, now: float) -> Decision:
    """What to do with a rollout in a live phase (shadow or canary), on this evidence."""
    elapsed = now - rollout.since
    if evidence.requests < cfg.min_requests or elapsed < cfg.min_seconds:
        if elapsed >= cfg.max_seconds:
            why = (f"{rollout.phase}: only {evidence.requests} of rollout.min_requests {cfg.min_requests} "
                   f"candidate requests in rollout.max_seconds {cfg.max_seconds:g}s; rollout.on_timeout is "
                   f"{cfg.on_timeout}")
            return Decision(cfg.on_timeout, (why,))
        return Decision("wait", (f"{rollout.phase}: {evidence.requests}/{cfg.min_requests} requests, "
                                 f"{elapsed:.0f}/{cfg.min_seconds:g}s",))
    failures, passes = _bounds(cfg, rollout.phase, evidence)
    if failures:
        return Decision("abort", tuple(failures))
    following = next_phase(cfg, rollout.phase)
    return Decision("promote" if following is None else "advance", tuple(passes), following)


def _bounds(cfg: RolloutConfig, phase: str, e: Evidence) -> tuple[list[str], list[str]]:
    """(failed bounds, met bounds), each worded with its numbers and the config key."""
    failures: list[str] = []
    passes: list[str] = []

    def check(ok: bool, text: str) -> None:
        (passes if ok else failures).append(f"{phase}: {text}")

    if phase == "shadow":
        agreement = e.agreement
        if agreement is None:
            failures.append(f"{phase}: no mirrored answer could be compared ({e.errors} of {e.requests} failed)")
        else:
            check(agreement >= cfg.min_agreement, f"agreement {agreement:.4f} on {e.compared} rows "
                  f"(rollout.min_agreement {cfg.min_agreement:g})")
    increase = e.error_rate - e.baseline_error_rate
    check(increase <= cfg.max_error_rate_increase,
          f"error rate {e.error_rate:.4f} vs champion {e.baseline_error_rate:.4f} "
          f"(rollout.max_error_rate_increase {cfg.max_error_rate_increase:g})")
    ratio = e.p99_ratio
    if ratio is not None and e.p99_seconds is not None and e.baseline_p99_seconds is not None:
        check(ratio <= cfg.max_p99_latency_ratio, f"p99 latency {e.p99_seconds * 1000:.2f} ms vs champion "
              f"{e.baseline_p99_seconds * 1000:.2f} ms (rollout.max_p99_latency_ratio {cfg.max_p99_latency_ratio:g})")
    return failures, passes


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """``histogram_quantile`` as Prometheus computes it, from cumulative ``(le, count)`` buckets."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return lower_bound
            if count == lower_count:
                return le
            return lower_bound + (le - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = le, count
    return lower_bound


def evidence(texts: list[str], rollout: Rollout) -> Evidence:
    """The current phase's evidence from the frontends' ``/metrics`` pages (summed over replicas)."""
    candidate_path = "shadow" if rollout.phase == "shadow" else "user"
    counts: dict[tuple[str | None, ...], float] = {}  # by (sample, version, path, outcome)
    buckets: dict[tuple[str | None, ...], dict[float, float]] = {}  # by (sample, version, path), then le
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = sample.labels
                key = (sample.name, labels.get("version"), labels.get("path"),
                       labels.get("outcome") or labels.get("result"))
                if sample.name == LATENCY + "_bucket":
                    per_le = buckets.setdefault(key[:3], {})
                    le = float(labels["le"])
                    per_le[le] = per_le.get(le, 0.0) + sample.value
                else:
                    counts[key] = counts.get(key, 0.0) + sample.value

    def count(version: int, path: str | None, outcome: str, name: str = REQUESTS) -> int:
        return int(counts.get((name, str(version), path, outcome), 0))

    def p99(version: int, path: str) -> float | None:
        return quantile(0.99, list(buckets.get((LATENCY + "_bucket", str(version), path), {}).items()))

    c, s = rollout.candidate, rollout.stable
    agreed, disagreed = count(c, None, "agree", SHADOW_ROWS), count(c, None, "disagree", SHADOW_ROWS)
    return Evidence(
        requests=count(c, candidate_path, "ok") + count(c, candidate_path, "error"),
        errors=count(c, candidate_path, "error"),
        baseline_requests=count(s, "user", "ok") + count(s, "user", "error"),
        baseline_errors=count(s, "user", "error"),
        rows=count(c, candidate_path, "ok", ROWS) + count(c, candidate_path, "error", ROWS),
        error_rows=count(c, candidate_path, "error", ROWS),
        baseline_rows=count(s, "user", "ok", ROWS) + count(s, "user", "error", ROWS),
        baseline_error_rows=count(s, "user", "error", ROWS),
        compared=agreed + disagreed, agreed=agreed,
        p99_seconds=p99(c, candidate_path), baseline_p99_seconds=p99(s, "user"),
    )


def describe(e: Evidence, phase: str) -> str:
    """One line comparing candidate and champion, as the model page shows it."""
    parts = [f"{e.requests} candidate requests ({e.errors} errors; {e.rows} rows, {e.error_rows} failed) vs "
             f"{e.baseline_requests} champion ({e.baseline_errors} errors; {e.baseline_rows} rows, "
             f"{e.baseline_error_rows} failed)"]
    if phase == "shadow" and e.agreement is not None:
        parts.append(f"agreement {e.agreement:.2%} on {e.compared} rows")
    if e.p99_seconds is not None and e.baseline_p99_seconds is not None:
        parts.append(f"p99 {e.p99_seconds * 1000:.1f} ms vs {e.baseline_p99_seconds * 1000:.1f} ms")
    return "; ".join(parts)


def serving_config(model_name: str, base_path: str, versions: list[int] | None, labels: dict[str, int]) -> str:
    """The ``ModelServerConfig`` text proto TF Serving reads from ``--model_config_file``.

    ``versions`` None: no policy, so TF Serving's default ``latest`` serves the highest version, as
    ``--model_name``/``--model_base_path`` do (``direct`` mode).
    """
    policy = [] if versions is None else [
        f"    model_version_policy {{ specific {{ {' '.join(f'versions: {v}' for v in sorted(set(versions)))} }} }}"]
    lines = [
        "model_config_list {",
        "  config {",
        f"    name: {_quoted(model_name)}",
        f"    base_path: {_quoted(base_path)}",
        '    model_platform: "tensorflow"',
        *policy,
        *(f'    version_labels {{ key: "{k}" value: {v} }}' for k, v in labels.items()),
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
