"""Staged rollout, the I/O: records, notifications, the serving config file, live evidence.

The trainer is the only writer of ``models/`` and of the serving config file TF Serving polls
(``rollout.serving_config_file``). That file is always derived from the history records and the
model store (``sync``), never from memory, so a restarted trainer rewrites the same file and a
restarted TF Serving loads the same versions. Each step appends its record first and then
rewrites the file: the frontend (which routes from the records) moves its traffic before TF
Serving unloads anything, and retries once on a version that just went away.

TF Serving runs from that file in every mode (``direct``: one model, TF Serving's default ``latest``
policy), so switching ``rollout.mode`` never changes serving's flags (docs/rollout.md).

Evidence is read from the frontends' ``/metrics`` (``FRONTEND_METRICS_URL``, comma-separated for
several replicas, or every address of ``FRONTEND_HEADLESS_SERVICE``): gunicorn's workers are
already merged there, the frontend needs no writable volume, and Prometheus alerts and dashboards
see the very numbers the decision used.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping

import requests

from modelops.core import history, rollout
from modelops.core.config import Config
from modelops.core.errors import ServingError, ServingTimeout, ServingUnavailable, StoreError, UsageError
from modelops.core.history import Event
from modelops.core.model_name import served_model_name
from modelops.core.notify import notify
from modelops.core.rollout import Decision, Evidence, Rollout
from modelops.core.store import ModelStore, write_text_atomic
from modelops.core.tfserving_client import ServingClient
from modelops.trainer.retrain.verify import resolve_replicas

FRONTEND_METRICS_ENV = "FRONTEND_METRICS_URL"
FRONTEND_HEADLESS_ENV = "FRONTEND_HEADLESS_SERVICE"  # name:port of a headless Service: every frontend pod
BASE_PATH_ENV = "TF_SERVING_BASE_PATH"
DEFAULT_FRONTEND_METRICS = "http://localhost:5002/metrics"
LOAD_WAIT_SECONDS = 60.0  # loaded_beside: for the writer lock, then for serving to load the versions
LOAD_POLL_SECONDS = 0.2

# evidence_source(rollout) -> Evidence, or None when no frontend could be read
EvidenceSource = Callable[[Rollout], "Evidence | None"]


def active(config: Config) -> Rollout | None:
    return rollout.state(history.read(config.history_path))


def sync(config: Config, store: ModelStore) -> None:
    """Write the serving config file the records imply. ``direct``: one model with TF Serving's
    default ``latest`` policy (the highest version serves, whatever the records say)."""
    if config.rollout.mode == "direct":
        _write(config, None, {})
        return
    versions, labels = _implied(config, store)
    if versions:
        _write(config, versions, labels)


def _implied(config: Config, store: ModelStore) -> tuple[list[int], dict[str, int]]:
    """The versions serving should hold and their labels, from the records (none before a first publish)."""
    records = history.read(config.history_path)
    current = rollout.state(records)
    if current is None:
        settled = rollout.settled(records)  # not the highest version if an abort was cut short
        version = settled if settled in store.versions() else store.latest()
        return ([] if version is None else [version]), {}
    labels = {"stable": current.stable}
    if current.phase != "loading":  # TF Serving labels only a version that is already AVAILABLE
        labels["canary"] = current.candidate
    return [current.stable, current.candidate], labels


@contextlib.contextmanager
def loaded_beside(config: Config, store: ModelStore, client: ServingClient, versions: list[int],
                  wait_seconds: float = LOAD_WAIT_SECONDS) -> Iterator[None]:
    """Have serving load published ``versions`` beside the ones the records imply, for the block
    (``compare --load``); the file is rewritten from the records afterwards, which unloads them.

    The writer lock is held throughout, so no trainer step rewrites the file meanwhile (the trainer
    service looks again later). Users are not affected: no label moves.
    """
    with store.lock(wait_seconds):
        published = store.versions()
        unpublished = [v for v in versions if v not in published]
        if unpublished:
            raise UsageError(f"cannot load v{unpublished[0]}: it is not published in {store.root} "
                             f"(published: {', '.join(f'v{v}' for v in published) or 'none'})")
        implied, labels = _implied(config, store)
        _write(config, sorted({*implied, *versions}), labels)
        try:
            _wait_available(config, client, versions, wait_seconds)
            yield
        finally:
            sync(config, store)


def _wait_available(config: Config, client: ServingClient, versions: list[int], wait_seconds: float) -> None:
    deadline = time.monotonic() + wait_seconds
    while not all(_available(client, v) for v in versions):
        if time.monotonic() > deadline:
            raise ServingTimeout(
                f"TF Serving at {client.shown_url} did not report v{', v'.join(map(str, versions))} AVAILABLE "
                f"within {wait_seconds:g}s of their listing in {config.serving_config_path}: is it running "
                f"with --model_config_file={config.serving_config_path} (docs/rollout.md)?")
        time.sleep(LOAD_POLL_SECONDS)


def serving_base_path(config: Config, environ: Mapping[str, str] = os.environ) -> str:
    """The models directory as TF Serving sees it: ``TF_SERVING_BASE_PATH`` (compose and Kubernetes
    set it to TF Serving's mount), else ``rollout.serving_base_path``, else the trainer's own path."""
    return (environ.get(BASE_PATH_ENV, "").strip() or config.rollout.serving_base_path
            or str(config.models_dir.resolve()))


def _write(config: Config, versions: list[int] | None, labels: dict[str, int]) -> None:
    model_name = served_model_name(config)  # the name serving answers to, as clients use it
    text = rollout.serving_config(model_name, serving_base_path(config), versions, labels)
    path = config.serving_config_path
    try:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, text)
    except OSError as exc:
        raise StoreError(f"could not write the serving config file {path}: {exc}") from exc


def before_publish(config: Config, store: ModelStore, version: int) -> None:
    """Pipeline hook under the writer lock: in shadow/canary mode a candidate loads beside the champion.

    The first model has no champion to protect: it is simply listed. A rollout already in
    progress must end first (one candidate at a time, so the champion is always known).
    """
    if config.rollout.mode == "direct":
        sync(config, store)  # rewritten only if config.json's model_name changed since: serving must know the name
        return
    current = active(config)
    if current is not None:
        raise StoreError(f"a rollout of v{current.candidate} is in progress ({current.phase}); finish it with "
                         "'retrain_pipeline.py rollout advance' or 'rollout abort' before publishing another")
    champion = store.latest()
    if champion is None:
        _write(config, [version], {})
        return
    _step(config, Event.ROLLOUT_START, f"v{version} loads beside v{champion}; users stay on v{champion}",
          version=version, stable_version=champion, phase="loading",
          reasons=[f"rollout.mode {config.rollout.mode}: phases {', '.join(rollout.phases(config.rollout))}"])
    sync(config, store)


def _step(config: Config, event: Event, message: str, **fields) -> dict:
    record = history.append(config.history_path, event, model_name=config.model_name, **fields)
    notify(config.notifications_path, event, f"{config.model_name} {message}", record)
    return record


def tick(config: Config, evidence_source: EvidenceSource, client: ServingClient, force: str | None = None,
         wait_seconds: float = 0.0) -> tuple[Rollout, Decision] | None:
    """Take the next step of the rollout in progress, if its evidence allows; returns (rollout, decision),
    or None when no rollout is in progress.

    ``force`` is ``advance`` or ``abort`` (by hand): the step is taken whatever the evidence says.
    """
    store = ModelStore(config.models_dir)
    with store.lock(wait_seconds):
        current = active(config)
        if current is None:
            _finish_abort(config, store)
            sync(config, store)
            return None
        decision = _decision(config, store, current, evidence_source, client, force)
        _apply(config, store, current, decision)
        return current, decision


def _decision(config, store, current: Rollout, evidence_source, client, force) -> Decision:
    cfg = config.rollout
    following = rollout.next_phase(cfg, current.phase)
    if force == "abort":
        return Decision("abort", ("aborted by hand (retrain_pipeline.py rollout abort)",))
    if current.candidate not in store.versions():
        return Decision("abort", (f"v{current.candidate} is no longer in {store.root} (retired)",))
    if force == "advance":
        return Decision("promote" if following is None else "advance",
                        ("advanced by hand (retrain_pipeline.py rollout advance)",), following)
    if current.phase == "loading":
        if _available(client, current.candidate):
            return Decision("advance", (f"v{current.candidate} is AVAILABLE beside v{current.stable}",), following)
        if time.time() - current.since >= cfg.max_seconds:
            return Decision("abort", (f"v{current.candidate} not AVAILABLE within rollout.max_seconds "
                                      f"{cfg.max_seconds:g}s",))
        return Decision("wait", (f"loading: waiting for TF Serving to report v{current.candidate} AVAILABLE",))
    evidence = evidence_source(current)
    if evidence is None:  # no frontend answered: as good as no traffic
        evidence = Evidence()
    return rollout.decide(cfg, current, evidence, time.time())


def _apply(config: Config, store: ModelStore, current: Rollout, decision: Decision) -> None:
    c, s = current.candidate, current.stable
    fields = dict(version=c, stable_version=s, reasons=list(decision.reasons))
    if decision.action == "advance":
        _step(config, Event.ROLLOUT_ADVANCE, f"v{c} enters {decision.phase} (v{s} stays stable): "
              f"{'; '.join(decision.reasons)}", phase=decision.phase, **fields)
    elif decision.action == "promote":
        _step(config, Event.ROLLOUT_PROMOTE, f"v{c} is stable now, v{s} unloaded: {'; '.join(decision.reasons)}",
              **fields)
    elif decision.action == "abort":
        _step(config, Event.ROLLOUT_ABORT, f"v{c} retired, v{s} stays stable: {'; '.join(decision.reasons)}", **fields)
        if c in store.versions():
            store.retire(c)
    sync(config, store)  # on every step, waits included: a restarted trainer rewrites a lost file


def _finish_abort(config: Config, store: ModelStore) -> None:
    """An abort recorded but interrupted before its candidate was retired: retire it now."""
    ends = [r for r in history.read(config.history_path)
            if r.get("event") in (Event.ROLLOUT_PROMOTE, Event.ROLLOUT_ABORT)]
    if ends and ends[-1]["event"] == Event.ROLLOUT_ABORT and ends[-1].get("version") in store.versions():
        store.retire(ends[-1]["version"])


def _available(client: ServingClient, version: int) -> bool:
    try:
        return any(str(e.get("version")) == str(version) and e.get("state") == "AVAILABLE"
                   for e in client.status() if isinstance(e, dict))
    except ServingError:
        return False


def frontend_metrics_urls(environ: Mapping[str, str] = os.environ) -> list[str]:
    """Every frontend's ``/metrics``: ``FRONTEND_METRICS_URL`` (comma-separated), else one per address of
    ``FRONTEND_HEADLESS_SERVICE`` (``name[:port]``; Kubernetes: one A record per pod, resolved at each
    read, so replicas the autoscaler adds count too), else the local frontend."""
    listed = [u.strip() for u in environ.get(FRONTEND_METRICS_ENV, "").split(",") if u.strip()]
    headless = environ.get(FRONTEND_HEADLESS_ENV, "").strip()
    if listed or not headless:
        return listed or [DEFAULT_FRONTEND_METRICS]
    try:
        return [f"{url}/metrics" for url in resolve_replicas(headless, FRONTEND_HEADLESS_ENV, 5002)]
    except ServingUnavailable:
        return []  # no frontend pod yet: as good as no traffic


def frontend_evidence(urls: list[str] | None = None, timeout: float = 5.0) -> EvidenceSource:
    """An evidence source reading every frontend's ``/metrics``; None when none answered."""

    def read(current: Rollout) -> Evidence | None:
        texts = []
        for url in urls if urls is not None else frontend_metrics_urls():
            try:
                response = requests.get(url, timeout=timeout)
            except requests.RequestException:
                continue
            if response.status_code == 200:
                texts.append(response.text)
        return rollout.evidence(texts, current) if texts else None

    return read


def status_lines(config: Config, evidence_source: EvidenceSource) -> list[str]:
    """The rollout in progress and its live comparison, for ``rollout status``."""
    if config.rollout.mode == "direct":
        head = "rollout.mode is direct: a candidate that passes the gate serves at once"
    else:
        head = f"rollout.mode {config.rollout.mode} (phases {', '.join(rollout.phases(config.rollout))})"
    current = active(config)
    if current is None:
        return [head, "no rollout in progress"]
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(current.since))
    lines = [head, f"v{current.candidate} in {current.phase} since {since}; v{current.stable} is stable"]
    if current.phase != "loading":
        e = evidence_source(current)
        lines.append(rollout.describe(e, current.phase) if e is not None else "no frontend /metrics answered")
    return lines

