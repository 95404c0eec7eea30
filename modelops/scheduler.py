"""The trainer service: ``python -m modelops.scheduler`` (the trainer container's command).

Runs the gated retrain on ``schedule.cron`` (local time, as cron does; read at start, so a new
expression needs a restart), once at start when no model is published yet
(``schedule.bootstrap_on_start``), and serves the trainer metrics on ``:9102/metrics``
(``TRAINER_METRICS_PORT``). Missed fire times are not caught up, as with cron.

Choices:

- Each run is a child process running the same CLI as a manual or cron run
  (``python -m modelops.cli retrain --wait 86400``): identical behaviour, verification
  included; TensorFlow's memory goes back to the OS when the run ends; a crash (OOM kill,
  segfault) in a run cannot take the service down. The service itself never imports TensorFlow.
- The child waits for the pipeline's writer lock (up to a day), so a scheduled run queues
  behind a manual ``docker compose exec trainer python retrain_pipeline.py`` instead of
  skipping a week; its "waiting ... for the writer lock" line says so.
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
  seconds (Docker's default grace is 10 s); if the child has not exited after
  ``STOP_GRACE_SECONDS`` it is killed, which the atomic publish makes safe too. Exit 0.
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

from modelops import metrics, rollout_control
from modelops.config import default_config_path, load_config
from modelops.errors import ConfigError, LockBusyError, ModelopsError, ServingError
from modelops.history import now_iso
from modelops.pipeline import EXIT_FAILED, EXIT_USAGE
from modelops.store import ModelStore
from modelops.verify import serving_client

PROJECT_DIR = Path(__file__).resolve().parent.parent
LOCK_WAIT_SECONDS = 86400
STOP_GRACE_SECONDS = 10.0
MAX_SLEEP_SECONDS = 60.0  # re-read the clock at least this often (suspend, clock changes)
ROLLOUT_POLL_SECONDS = 2.0  # how often a rollout in progress is looked at
EXIT_MEANINGS = {0: "promoted", 3: "rejected by the gate", 2: "config error",
                 1: "failed or rolled back (see last_train_log.txt)"}


def next_fire(cron: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` that matches ``cron`` (in ``after``'s timezone)."""
    return croniter(cron, after).get_next(datetime)


def _now() -> datetime:
    return datetime.now().astimezone()


class Scheduler:
    def __init__(self, config_path: Path, echo=print):
        self.config_path = Path(config_path).resolve()
        self.config = load_config(self.config_path)
        self.echo = echo
        self.stop = threading.Event()
        self.next_at: datetime | None = None
        self.running = False
        self._client = serving_client(self.config, timeout=2.0)
        self._evidence = rollout_control.frontend_evidence()

    def log(self, message: str) -> None:
        self.echo(f"{now_iso()} scheduler: {message}")

    def request_stop(self, signum: int, _frame=None) -> None:
        """Signal handler: only sets the flag; the loops act on it."""
        self.log(f"{signal.Signals(signum).name} received, stopping")
        self.stop.set()

    def serve_forever(self) -> int:
        cron = self.config.schedule.cron
        if self.config.schedule.bootstrap_on_start and ModelStore(self.config.models_dir).latest() is None:
            self.run_once("no model published yet (schedule.bootstrap_on_start)")
        while not self.stop.is_set():
            self.next_at = next_fire(cron, _now())
            self.log(f"next run at {self.next_at.isoformat()} (schedule.cron {cron!r})")
            self._wait_for_next_run()
            if not self.stop.is_set():
                self.run_once("scheduled run")
        self.next_at = None
        self.log("stopped")
        return 0

    def _wait_for_next_run(self) -> None:
        """Sleep until ``next_at`` (or a stop), stepping any rollout; a due run waits for the rollout to end."""
        staged = self.config.rollout.mode != "direct"
        postponed = False
        while not self.stop.is_set():
            remaining = (self.next_at - _now()).total_seconds()
            in_rollout = staged and self.rollout_tick()
            if remaining <= 0 and not in_rollout:
                return
            if remaining <= 0 and not postponed:
                postponed = True
                self.log("the scheduled run waits for the rollout in progress to end")
            nap = ROLLOUT_POLL_SECONDS if staged else MAX_SLEEP_SECONDS
            self.stop.wait(min(nap, remaining) if remaining > 0 else nap)

    def run_once(self, reason: str) -> int | None:
        """Run one retrain in a child process; abort it if a stop is requested. Returns its exit code."""
        if self.stop.is_set():
            return None
        self.log(f"{reason}: starting a retrain")
        command = [sys.executable, "-m", "modelops.cli", "--config", str(self.config_path),
                   "retrain", "--wait", str(LOCK_WAIT_SECONDS)]
        self.running = True
        # Own session: a terminal's Ctrl-C reaches the scheduler only, which forwards one SIGTERM.
        child = subprocess.Popen(command, cwd=PROJECT_DIR, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                 start_new_session=True)
        stopping_since = None
        try:
            while True:
                try:
                    code = child.wait(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if self.stop.is_set() and stopping_since is None:
                    stopping_since = time.monotonic()
                    self.log("aborting the current run (nothing half-written is left behind)")
                    child.send_signal(signal.SIGTERM)
                elif stopping_since is not None and time.monotonic() - stopping_since > STOP_GRACE_SECONDS:
                    self.log(f"the run did not stop within {STOP_GRACE_SECONDS:g}s: killing it")
                    child.kill()
        finally:
            self.running = False
        self.log(f"retrain finished: exit {code} ({EXIT_MEANINGS.get(code, 'killed' if code < 0 else 'failed')})")
        if self.config.rollout.mode != "direct":
            self.rollout_tick()  # a published candidate starts its live phases without waiting a poll
        return code

    def rollout_tick(self) -> bool:
        """Take the next rollout step the evidence allows; True while a rollout is in progress."""
        try:
            current, decision = rollout_control.tick(self.config, self._evidence, self._client)
        except LockBusyError:
            return True  # a retrain or a hand-run rollout command holds the lock: look again later
        except ModelopsError as exc:
            self.log(f"rollout: {exc}")
            return True
        if current is None:
            return False
        if decision.action != "wait":
            self.log(f"rollout of v{current.candidate} ({current.phase}): {decision.action}: "
                     f"{'; '.join(decision.reasons)}")
        return decision.action in ("wait", "advance")

    def served_version(self) -> int | None:
        try:
            return self._client.latest_version(max_age=0)
        except ServingError:
            return None

    def collector(self) -> metrics.TrainerCollector:
        return metrics.TrainerCollector(
            self.config, served_version=self.served_version,
            next_run=lambda: self.next_at.timestamp() if self.next_at else None, running=lambda: self.running,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m modelops.scheduler",
        description="Trainer service: gated retrain on schedule.cron, bootstrap when no model exists, "
                    "metrics on :$TRAINER_METRICS_PORT/metrics (default 9102). SIGTERM stops it cleanly.",
    )
    parser.add_argument("--config", help="path to config.json (default: $MODELOPS_CONFIG or ./config.json)")
    args = parser.parse_args(argv)
    try:
        scheduler = Scheduler(Path(args.config) if args.config else default_config_path(),
                              echo=lambda line: print(line, flush=True))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, scheduler.request_stop)
    try:
        server = metrics.serve(scheduler.collector())
    except OSError as exc:
        print(f"error: cannot serve metrics on port {os.environ.get(metrics.PORT_ENV, metrics.DEFAULT_PORT)}: {exc}",
              file=sys.stderr)
        return EXIT_FAILED
    scheduler.log(f"metrics on :{server.server_port}/metrics; models in {scheduler.config.models_dir}")
    try:
        return scheduler.serve_forever()
    finally:
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
