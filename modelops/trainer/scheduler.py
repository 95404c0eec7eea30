"""The trainer service: ``python -m modelops.trainer.scheduler`` (the trainer container's command).

Runs the gated retrain on ``schedule.cron`` (local time, as cron does), once at start when no model is published yet
(``schedule.bootstrap_on_start``), and serves the trainer metrics on ``:9102/metrics``
(``TRAINER_METRICS_PORT``). Missed fire times are not caught up, as with cron. With
``--no-retrain`` it does all but the retrains (on Kubernetes a CronJob runs them); with
``--metrics-only`` it only serves the metrics, read-only.

Choices:

- Each run is a child process running the same CLI as a manual or cron run
  (``python -m modelops.trainer.cli retrain --wait 86400``): identical behaviour, verification
  included; TensorFlow's memory goes back to the OS when the run ends; a crash (OOM kill,
  segfault) in a run cannot take the service down. The service itself never imports TensorFlow.
- The child waits for the pipeline's writer lock (up to a day), so a scheduled run queues
  behind a manual ``docker compose exec trainer python retrain_pipeline.py`` instead of
  skipping a week; its "waiting ... for the writer lock" line says so.
- TF Serving always runs from the serving config file the trainer owns (docs/rollout.md): at start
  the service writes it (``direct``: one model, ``latest`` policy), before the first retrain, so
  serving, which waits for the file, finds it.
- Staged rollout (``rollout.mode`` shadow/canary): every ``ROLLOUT_POLL_SECONDS`` the service
  takes the next rollout step the live evidence allows (``rollout_control.tick``, under the
  writer lock, so never during a retrain); at start this rewrites the serving config file from the
  records, which resumes a rollout after a restart. A scheduled retrain waits while a rollout is
  in progress (one candidate at a time).
- SIGTERM/SIGINT: when idle, exit 0 at once. During a run, the child gets one SIGTERM and
  aborts at the next Python instruction (training is the long step) and records the run as
  ``failed`` (interrupted), or as ``unverified`` if it had already promoted. Publishing or
  retiring a version together with its history record holds the signal back, and publish is
  an atomic rename, so no numeric directory is ever half-written and no served version is
  left unrecorded. Aborting, rather than finishing the run, keeps the stop within a few
  seconds; if the child has not exited after ``STOP_GRACE_SECONDS`` it is killed, which the
  atomic publish makes safe too (the writer lock is an ``flock``: the kernel frees it). Exit 0.
  The grace fits inside the supervisors' own: honcho kills after 5 s (fixed in honcho 2.0),
  compose's ``stop_grace_period`` for the trainer is 30 s. Were the scheduler killed first,
  its child would run on, in its own session, holding the lock until its deadline.
- A changed config.json is seen at the next tick (``config_watch``; at most ``MAX_SLEEP_SECONDS``):
  the cron, triggers, gate, model name (the serving config file is rewritten) and everything a run
  reads take effect without a restart; one that does not load is reported and the old one kept.
  The trainer metrics port and the environment are read at start only.
- ``schedule.triggers`` (off by default, ``modelops.trainer.triggers``): while it waits for the cron, the service
  lists ``data/incoming/`` every ``check_seconds`` and starts a run early on enough new rows or a
  drifted batch (``trigger: ...`` in its log and the run's record); the cron still fires as set.
- Deadline: every run ends itself once it has held the lock for ``schedule.max_run_seconds``
  and records ``failed`` (timed out). A run stuck where the signal cannot reach Python (inside
  native code) is killed by the scheduler ``STOP_GRACE_SECONDS`` later, which records it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from croniter import croniter

from modelops.core import filemodes, history
from modelops.core.config import default_config_path, load_config
from modelops.core.config_watch import ConfigWatch, differences
from modelops.core.errors import ConfigError, LockBusyError, ModelopsError, ServingError, UsageError
from modelops.core.exit_codes import MEANINGS, ExitCode, usage_exit
from modelops.core.history import Event
from modelops.core.paths import REPO_ROOT
from modelops.core.store import ModelStore
from modelops.core.timestamps import now_iso
from modelops.trainer import metrics as trainer_metrics
from modelops.trainer import rollout_control, triggers
from modelops.trainer.retrain.late_verification import version_awaiting_verification
from modelops.trainer.retrain.records import record_killed_run
from modelops.trainer.retrain.verify import serving_client

LOCK_WAIT_SECONDS = 86400
STOP_GRACE_SECONDS = 3.0
MAX_SLEEP_SECONDS = 60.0  # re-read the clock at least this often (suspend, clock changes)
ROLLOUT_POLL_SECONDS = 2.0  # how often a rollout in progress is looked at
CONFIG_CHANGED = "config.json changed"  # _wait_for_next_run's answer when the schedule must be worked out again


def next_fire(cron: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` that matches ``cron`` (in ``after``'s timezone)."""
    return croniter(cron, after).get_next(datetime)


def _now() -> datetime:
    return datetime.now().astimezone()


class Scheduler:
    def __init__(self, config_path: Path, echo=print, retrain: bool = True, rollouts: bool = True):
        self.config_path = Path(config_path).resolve()
        self.retrain = retrain  # False: runs happen elsewhere (a Kubernetes CronJob)
        self.rollouts = rollouts  # False: read-only, metrics only (writes neither the config file nor records)
        self.config = load_config(self.config_path)
        self.echo = echo
        self.stop = threading.Event()
        self.next_at: datetime | None = None
        self.running = False
        self.stop_grace = STOP_GRACE_SECONDS
        self._overdue_killed = False  # the current run was killed by us at its deadline
        self.store = ModelStore(self.config.models_dir)
        self._client = serving_client(self.config, timeout=2.0)
        self._evidence = rollout_control.frontend_evidence()
        self.triggers = triggers.Triggers(self.config) if retrain and self.config.schedule.triggers.enabled else None
        self.watch = ConfigWatch(self.config_path, self.config, self.log)
        self._collector: trainer_metrics.TrainerCollector | None = None

    def log(self, message: str) -> None:
        self.echo(f"{now_iso()} scheduler: {message}")

    def request_stop(self, signum: int, _frame=None) -> None:
        """Signal handler: only sets the flag; the loops act on it."""
        self.log(f"{signal.Signals(signum).name} received, stopping")
        self.stop.set()

    def serve_forever(self) -> int:
        cron = self.config.schedule.cron
        bootstrap = self.retrain and self.config.schedule.bootstrap_on_start
        if self.rollouts:
            self.write_serving_config()
        if bootstrap and self.store.latest() is None:
            self.run_once("no model published yet (schedule.bootstrap_on_start)")
        self.verify_tick()
        while not self.stop.is_set():
            self.next_at = next_fire(cron, _now())
            self.log(f"next run at {self.next_at.isoformat()} (schedule.cron {cron!r})")
            trigger = self._wait_for_next_run(self.next_at)
            if trigger == CONFIG_CHANGED:
                continue
            if self.retrain and not self.stop.is_set():
                self.run_once(f"trigger: {trigger}" if trigger else "scheduled run", trigger)
        self.next_at = None
        self.log("stopped")
        return ExitCode.OK

    def _wait_for_next_run(self, next_at: datetime) -> str | None:
        """Sleep until ``next_at`` (or a stop), stepping any rollout; a due run waits for the rollout to end.

        Returns early with the reason when ``schedule.triggers`` calls for a run (modelops.trainer.triggers)."""
        staged = self.rollouts and self.config.rollout.mode != "direct"
        postponed = False
        while not self.stop.is_set():
            if self.reload_config():
                return CONFIG_CHANGED
            remaining = (next_at - _now()).total_seconds()
            in_rollout = staged and self.rollout_tick()
            if remaining <= 0 and not in_rollout:
                return None
            if remaining <= 0 and not postponed:
                postponed = True
                self.log("the scheduled run waits for the rollout in progress to end")
            trigger = self.triggers.due() if self.triggers is not None and not in_rollout else None
            if trigger:
                return trigger
            # only direct mode verifies late: a first model published before serving answered
            awaiting_verification = not staged and self.verify_tick()
            nap = ROLLOUT_POLL_SECONDS if staged or awaiting_verification else MAX_SLEEP_SECONDS
            if self.triggers is not None:
                nap = min(nap, self.config.schedule.triggers.check_seconds)
            self.stop.wait(min(nap, remaining) if remaining > 0 else nap)
        return None

    def reload_config(self) -> bool:
        """Take up a changed config.json (see the module docstring); True when it was."""
        new = self.watch.changed()
        if new is None:
            return False
        old, self.config = self.config, new
        self.log(f"{self.config_path} changed ({', '.join(differences(old, new)) or 'formatting only'}): "
                 "in effect from now on, no restart needed")
        self._client = serving_client(new, timeout=2.0)
        if old.schedule.triggers != new.schedule.triggers or self.triggers is None:
            self.triggers = triggers.Triggers(new) if self.retrain and new.schedule.triggers.enabled else None
        else:
            self.triggers.config = new
        if self._collector is not None:
            self._collector.config = new
        if self.rollouts:
            self.write_serving_config()  # a new model_name reaches TF Serving, which re-reads the file every second
        return True

    def run_once(self, reason: str, trigger: str | None = None) -> int | None:
        """Run one retrain in a child process; abort it if a stop is requested. Returns its exit code.

        ``trigger``: what started it, when schedule.triggers did (recorded with the run)."""
        if self.stop.is_set():
            return None
        self.log(f"{reason}: starting a retrain")
        self.running = True
        decisions_before, started = self._decisions(), time.time()
        self._overdue_killed = False
        try:
            code = self._run_child(self.retrain_command() + (["--trigger", trigger] if trigger else []))
        finally:
            self.running = False
        meaning = MEANINGS.get(code, "killed" if code < 0 else "failed")
        if code == ExitCode.OK and self._last_decision() == Event.UP_TO_DATE:
            meaning = "up to date: nothing new to train on"
        self.log(f"retrain finished: exit {code} ({meaning})")
        if code < 0 and self._decisions() == decisions_before:
            self._record_killed(code, started)
        if self.config.rollout.mode != "direct":
            self.rollout_tick()  # a published candidate starts its live phases without waiting a poll
        return code

    def _run_child(self, command: list[str]) -> int:
        """Run ``command`` (a CLI run) to its end; a stop request aborts it, a run past its deadline is killed."""
        # Own session: a terminal's Ctrl-C reaches the scheduler only, which forwards one SIGTERM.
        child = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                 start_new_session=True)
        stopping_since = None
        while True:
            try:
                return child.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
            if self.stop.is_set() and stopping_since is None:
                stopping_since = time.monotonic()
                self.log("aborting the current run (nothing half-written is left behind)")
                child.send_signal(signal.SIGTERM)
            elif stopping_since is not None and time.monotonic() - stopping_since > self.stop_grace:
                self.log(f"the run did not stop within {self.stop_grace:g}s: killing it")
                child.kill()
            elif stopping_since is None and self._overdue(child.pid):
                self._kill_overdue(child)

    def _last_decision(self) -> str | None:
        found = [r.get("event") for r in history.read(self.config.history_path)
                 if r.get("event") in trainer_metrics.DECISIONS]
        return found[-1] if found else None

    def _decisions(self) -> int:
        """How many run decisions the history holds: a run killed before writing its own adds none."""
        return sum(r.get("event") in trainer_metrics.DECISIONS for r in history.read(self.config.history_path))

    def _record_killed(self, code: int, started: float) -> None:
        """The ``failed`` record of a run killed by a signal (ours at its deadline, or another's: the
        out-of-memory killer, a person) before it could write one, so no run goes unrecorded."""
        run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
        if self._overdue_killed:
            why = (f"timed out (the run passed schedule.max_run_seconds={self.config.schedule.max_run_seconds:g} "
                   "and did not stop); killed by the scheduler")
        else:
            why = f"killed by {signal.Signals(-code).name} before it recorded a decision; nothing was published"
        message = f"retrain {run_id}: {why}"
        self.log(message)
        record_killed_run(self.config, run_id, message)


    def write_serving_config(self) -> None:
        """At start: the serving config file TF Serving runs from. ``direct``: its content never changes,
        so no lock; staged modes: the first rollout step, under the lock (the records decide)."""
        if self.config.rollout.mode != "direct":
            self.rollout_tick()
            return
        try:
            rollout_control.sync(self.config, self.store)
        except ModelopsError as exc:
            self.log(f"serving config: {exc}")

    def rollout_tick(self) -> bool:
        """Take the next rollout step the evidence allows; True while a rollout is in progress."""
        try:
            step = rollout_control.tick(self.config, self._evidence, self._client)
        except LockBusyError:
            return True  # a retrain or a hand-run rollout command holds the lock: look again later
        except ModelopsError as exc:
            self.log(f"rollout: {exc}")
            return True
        if step is None:
            return False
        current, decision = step
        if decision.action != "wait":
            self.log(f"rollout of v{current.candidate} ({current.phase}): {decision.action}: "
                     f"{'; '.join(decision.reasons)}")
        return decision.action in ("wait", "advance")

    def verify_tick(self) -> bool:
        """Verify a served version that has no verification record yet (the first model, published before
        TF Serving could start), in a child as a run, once serving answers; True while one still waits.
        A no-op returning False outside ``direct`` mode (a staged rollout judges a version on live
        evidence instead) and in a read-only service."""
        if not self.rollouts or self.config.rollout.mode != "direct" \
                or version_awaiting_verification(self.config, self.store) is None:
            return False
        try:
            self._client.status()
        except ServingError:
            return True  # serving is not up yet: ask again at the next poll
        self.log(f"verifying v{self.store.latest()}, published before TF Serving answered")
        command = [sys.executable, "-m", "modelops.trainer.cli", "--config", str(self.config_path), "verify", "--wait",
                   str(LOCK_WAIT_SECONDS)]
        code = self._run_child(command)
        self.log(f"verification finished: exit {code}")
        return False

    def retrain_command(self) -> list[str]:
        return [sys.executable, "-m", "modelops.trainer.cli", "--config", str(self.config_path),
                "retrain", "--wait", str(LOCK_WAIT_SECONDS)]

    def _overdue(self, pid: int) -> bool:
        """Whether the child has held the writer lock past its deadline and grace."""
        holder = self.store.lock_holder()
        limit = self.config.schedule.max_run_seconds + self.stop_grace
        return holder is not None and holder[0] == pid and time.time() - holder[1] > limit

    def _kill_overdue(self, child: subprocess.Popen) -> None:
        """The run ignored its own deadline (stuck in native code): kill it; run_once records it as timed out."""
        self._overdue_killed = True
        child.kill()

    def served_version(self) -> int | None:
        try:
            return self._client.latest_version(max_age=0)
        except ServingError:
            return None

    def collector(self) -> trainer_metrics.TrainerCollector:
        self._collector = trainer_metrics.TrainerCollector(
            self.config, served_version=self.served_version,
            next_run=lambda: self.next_at.timestamp() if self.next_at else None,
            running=(lambda: self.running) if self.retrain else None,
        )
        return self._collector


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m modelops.trainer.scheduler",
        description="Trainer service: gated retrain on schedule.cron, bootstrap when no model exists, "
                    "metrics on :$TRAINER_METRICS_PORT/metrics (default 9102). SIGTERM stops it cleanly.",
    )
    parser.add_argument("--config", help="path to config.json (default: $MODELOPS_CONFIG or ./config.json)")
    role = parser.add_mutually_exclusive_group()
    role.add_argument("--no-retrain", action="store_true",
                      help="all but the retrains (metrics, the serving config file, rollout steps): runs happen "
                           "elsewhere, on schedule.cron (the Kubernetes CronJob)")
    role.add_argument("--metrics-only", action="store_true",
                      help="serve the metrics only, read-only: never retrain, never write")
    args = parser.parse_args(argv)
    try:
        filemodes.apply_umask()
        scheduler = Scheduler(Path(args.config) if args.config else default_config_path(),
                              echo=lambda line: print(line, flush=True),
                              retrain=not (args.metrics_only or args.no_retrain), rollouts=not args.metrics_only)
    except (ConfigError, UsageError) as exc:
        return usage_exit(exc)
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, scheduler.request_stop)
    try:
        server = trainer_metrics.serve(scheduler.collector())
    except OSError as exc:
        port = os.environ.get(trainer_metrics.PORT_ENV, trainer_metrics.DEFAULT_PORT)
        print(f"error: cannot serve metrics on port {port}: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    scheduler.log(f"metrics on :{server.server_port}/metrics; models in {scheduler.config.models_dir}")
    try:
        return scheduler.serve_forever()
    finally:
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
