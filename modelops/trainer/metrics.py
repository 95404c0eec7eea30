"""The trainer's Prometheus metrics, served on ``:9102/metrics`` (``TRAINER_METRICS_PORT``).

Every value is derived at scrape time from files, never kept in memory: the decision history
(``runs/history.jsonl``, which stamps each run's records with its ``run_id``), the model store
and, for the served version, TF Serving's status. So a restarted trainer shows the right
values at once, and runs started by hand or by cron count as well as scheduled ones.

A run's outcome is ``rolled_back`` if it retired its own promotion, else ``failed``,
``rejected`` or ``promoted``. "Success" means the run completed (promoted or rejected).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from modelops.core import history, psi, rollout
from modelops.core.config import Config
from modelops.core.history import Event, Outcome
from modelops.core.store import ModelStore
from modelops.core.timestamps import parse_iso

PORT_ENV = "TRAINER_METRICS_PORT"
DEFAULT_PORT = 9102
BIND_ENV = "BIND_ADDRESS"  # every local-mode service listens on it
DEFAULT_BIND = "127.0.0.1"
DECISIONS = (Event.PROMOTE, Event.REJECT, Event.FAILED, Event.UP_TO_DATE)  # the record that opens a run
FOLLOW_UPS = (Event.VERIFIED, Event.UNVERIFIED, Event.VERIFY_FAILED, Event.ROLLBACK)
# A run's outcome: the first of these events among its records decides.
OUTCOME_OF = ((Event.ROLLBACK, Outcome.ROLLED_BACK), (Event.FAILED, Outcome.FAILED),
              (Event.REJECT, Outcome.REJECTED), (Event.PROMOTE, Outcome.PROMOTED),
              (Event.UP_TO_DATE, Outcome.UP_TO_DATE))
FAILURES = (Outcome.FAILED, Outcome.ROLLED_BACK)


def runs(records: list[dict]) -> list[dict]:
    """One summary per retrain, oldest first, from history records.

    Runs hold the writer lock, so a run's records are contiguous: a decision record opens a run
    and the verification records with the same ``run_id`` that follow it belong to it. Manual
    rollbacks carry no ``run_id`` and are not runs.
    """
    summaries: list[dict] = []
    for r in records:
        run_id = r.get("run_id")
        if r.get("event") in DECISIONS and run_id:
            summaries.append({"run_id": run_id, "events": {r["event"]}, "first": r, "last": r})
        elif r.get("event") in FOLLOW_UPS and run_id and summaries and summaries[-1]["run_id"] == run_id:
            summaries[-1]["events"].add(r["event"])
            summaries[-1]["last"] = r
    for s in summaries:
        events = s.pop("events")
        s["outcome"] = next(o for e, o in OUTCOME_OF if e in events)
    return summaries


def _epoch(iso: str | None) -> float:
    try:
        return parse_iso(iso or "")
    except ValueError:
        return 0.0


class TrainerCollector(Collector):
    """Collects the trainer metrics for one project.

    ``served_version()`` returns the highest version serving reports AVAILABLE (None if none or
    unreachable); the scheduler adds ``next_run()`` (epoch seconds) and ``running()``.
    """

    def __init__(self, config: Config, served_version: Callable[[], int | None] | None = None,
                 next_run: Callable[[], float | None] | None = None, running: Callable[[], bool] | None = None):
        self.config = config
        self.served_version, self.next_run, self.running = served_version, next_run, running

    def collect(self) -> Iterator[Metric]:
        records = history.read(self.config.history_path)
        yield from _rollout_gauges(self.config, rollout.state(records))
        summaries = runs(records)
        store = ModelStore(self.config.models_dir)

        counts = CounterMetricFamily("modelops_trainer_runs", "Retrain runs by outcome.", labels=["outcome"])
        for outcome in Outcome:
            counts.add_metric([outcome.value], sum(s["outcome"] == outcome for s in summaries))
        yield counts
        yield CounterMetricFamily("modelops_trainer_rows_accepted", "Data rows accepted from data/incoming/.",
                                  value=sum(s["first"].get("rows_accepted") or 0 for s in summaries))
        yield CounterMetricFamily("modelops_trainer_batches_quarantined",
                                  "Data batches (files) quarantined by validation.",
                                  value=sum(s["first"].get("batches_quarantined") or 0 for s in summaries))

        yield _gauge("modelops_trainer_history_damaged_lines",
                     "Lines of runs/history.jsonl skipped as damaged (torn, not UTF-8 JSON).", records.skipped)

        last = summaries[-1] if summaries else None
        completed = [s for s in summaries if s["outcome"] in (Outcome.PROMOTED, Outcome.REJECTED, Outcome.UP_TO_DATE)]
        promoted = [s for s in summaries if s["outcome"] == Outcome.PROMOTED]
        yield _gauge("modelops_trainer_last_run_timestamp_seconds", "End of the last run (0: never).",
                     _epoch(last["last"]["time"]) if last else 0.0)
        yield _gauge("modelops_trainer_last_success_timestamp_seconds",
                     "End of the last run that completed: promoted, rejected or up to date (0: never).",
                     _epoch(completed[-1]["last"]["time"]) if completed else 0.0)
        yield _gauge("modelops_trainer_last_promotion_timestamp_seconds",
                     "End of the last run that promoted a version that stayed (0: never).",
                     _epoch(promoted[-1]["last"]["time"]) if promoted else 0.0)
        yield _gauge("modelops_trainer_last_run_duration_seconds", "Duration of the last run (0: never).",
                     float(last["last"].get("elapsed_seconds") or 0.0) if last else 0.0)
        yield from self._loop_gauges(summaries, store)
        yield from _drift_gauges(self.config, summaries)

        scored = [s for s in summaries if isinstance(s["first"].get("accuracy_percent"), (int, float))]
        if scored:
            yield _gauge("modelops_trainer_candidate_accuracy_ratio", "Eval accuracy of the last candidate (0..1).",
                         scored[-1]["first"]["accuracy_percent"] / 100)
        published = store.latest()
        champion = (store.metrics(published) or {}).get("test_accuracy_percent") if published else None
        if isinstance(champion, (int, float)):
            yield _gauge("modelops_trainer_champion_accuracy_ratio",
                         "Eval accuracy of the published champion, from its metrics.json (0..1).", champion / 100)
        yield _gauge("modelops_trainer_published_version",
                     "Highest numeric version in models/, the one TF Serving should serve (0: none).", published or 0)
        if self.served_version is not None:
            yield _gauge("modelops_trainer_served_version",
                         "Highest version TF Serving reports AVAILABLE (0: none, or serving unreachable).",
                         self.served_version() or 0)
        if self.next_run is not None:
            yield _gauge("modelops_trainer_next_run_timestamp_seconds", "When the schedule fires next (0: stopping).",
                         self.next_run() or 0.0)
        if self.running is not None:
            yield _gauge("modelops_trainer_run_in_progress", "1 while a scheduled run is in progress.",
                         1.0 if self.running() else 0.0)

    def _loop_gauges(self, summaries: list[dict], store: ModelStore) -> Iterator[Metric]:
        """What the weekly-loop alerts watch: failures in a row, the run holding the lock, its deadline."""
        failing = itertools.takewhile(lambda s: s["outcome"] in FAILURES, reversed(summaries))
        yield _gauge("modelops_trainer_consecutive_failed_runs",
                     "How many of the latest runs in a row failed or were rolled back (0: the last one completed).",
                     sum(1 for _ in failing))
        holder = store.lock_holder()
        yield _gauge("modelops_trainer_run_started_timestamp_seconds",
                     "When the run now holding the writer lock (scheduled, manual or cron) took it (0: none).",
                     holder[1] if holder else 0.0)
        yield _gauge("modelops_trainer_max_run_seconds",
                     "schedule.max_run_seconds: a run that lasts longer is ended as failed (timed out).",
                     self.config.schedule.max_run_seconds)


def _drift_gauges(config: Config, summaries: list[dict]) -> Iterator[Metric]:
    """The last scored batch's drift per declared feature (the schema bounds the label values) and the
    serving model's accuracy on the last new rows, beside the gate's floor it is alerted against."""
    scored = [s["first"]["drift"] for s in summaries if isinstance(s["first"].get("drift"), dict)]
    last = {name: found for name, found in (scored[-1] if scored else {}).items()
            if name in config.schema.names and isinstance(found, dict) and isinstance(found.get("score"), (int, float))}
    yield from psi.gauges(("modelops_trainer_batch_drift_score", "modelops_trainer_batch_drifted"),
                          "the last run's new rows", last)
    measured = [s["first"]["served_accuracy_on_new"] for s in summaries
                if isinstance(s["first"].get("served_accuracy_on_new"), (int, float))]
    if measured:  # with the floor it is alerted against
        yield _gauge("modelops_trainer_served_accuracy_on_new_ratio",
                     "The serving version's accuracy on the last run's new labelled rows, before training (0..1).",
                     measured[-1] / 100)
        yield _gauge("modelops_trainer_gate_min_accuracy_ratio", "gate.min_accuracy_percent as a ratio (0..1).",
                     config.gate.min_accuracy_percent / 100)


def _rollout_gauges(config: Config, current: rollout.Rollout | None) -> Iterator[Metric]:
    """A rollout in progress: its candidate, and when its phase began (absent when none: nothing is stuck)."""
    yield _gauge("modelops_trainer_rollout_in_progress", "1 while a staged rollout is in progress.",
                 1.0 if current else 0.0)
    if current is None:
        return
    yield _gauge("modelops_trainer_rollout_candidate_version", "The candidate of the rollout in progress.",
                 current.candidate)
    yield _gauge("modelops_trainer_rollout_phase_started_timestamp_seconds",
                 "When the rollout's current phase began (epoch seconds).", current.since)
    yield _gauge("modelops_trainer_rollout_max_seconds",
                 "rollout.max_seconds: a phase should have ended by then (by evidence or rollout.on_timeout).",
                 config.rollout.max_seconds)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))


def serve(collector: TrainerCollector, port: int | None = None, registry: CollectorRegistry | None = None):
    """Register ``collector`` and serve ``/metrics`` on ``port`` (default ``$TRAINER_METRICS_PORT`` or 9102).

    Listens on ``$BIND_ADDRESS`` (default 127.0.0.1; the trainer image sets 0.0.0.0). Returns the
    HTTP server (``server_port``, ``shutdown()``).
    """
    registry = registry if registry is not None else CollectorRegistry()
    registry.register(collector)
    port = int(os.environ.get(PORT_ENV, DEFAULT_PORT)) if port is None else port
    server, _thread = start_http_server(port, addr=os.environ.get(BIND_ENV) or DEFAULT_BIND, registry=registry)
    return server
