"""Versions on disk -> loaded servables, with TF Serving's ``latest`` policy and state history.

Only direct children of the base path named by digits are versions; the highest is aspired
(TF Serving's default ``latest {num_versions: 1}``). Each poll loads the aspired version if it is
not loaded yet, and only once it is AVAILABLE unloads the others (availability-preserving), so
publishing ``N+1`` swaps in without a gap and deleting ``N+1`` rolls back by reloading ``N``.
A failed load is retried ``max_load_retries`` times (state stays LOADING meanwhile), then ends
as END with its error and is never tried again, while the loaded version keeps serving.

Readers never take a lock: the poller thread publishes immutable snapshots (a new dict each
time) and a request keeps the servable it looked up, so an unload never breaks it midway.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from modelops.errors import ServableError
from modelops.serving.monitoring import Metrics

logger = logging.getLogger("modelops.serving")

_VERSION_NAME = re.compile(r"[0-9]+")
_TF_CODE_NAMES = {
    getattr(tf.errors, name): name
    for name in (
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    )
}


@dataclass(frozen=True)
class VersionStatus:
    """One row of GetModelStatus: ``state`` is a ModelVersionStatus.State name."""

    version: int
    state: str
    error_code: str = "OK"
    error_message: str = ""


class Signature:
    """One SignatureDef of a loaded version, run like TF Serving runs it: ``Session::Run`` on the
    SignatureDef's tensor names, through a callable prepared once at load."""

    def __init__(self, session: tf.compat.v1.Session, definition: meta_graph_pb2.SignatureDef):
        self.inputs: dict[str, tf.TensorSpec] = {
            alias: tf.TensorSpec(tf.TensorShape(info.tensor_shape), tf.as_dtype(info.dtype), alias)
            for alias, info in sorted(definition.inputs.items())
        }
        self._outputs = sorted(definition.outputs)
        self._call = session.make_callable(
            [definition.outputs[alias].name for alias in self._outputs],
            [definition.inputs[alias].name for alias in self.inputs],
        )
        # plain numpy dtypes and shape tuples: TensorSpec's own checks cost more than the model here
        self._expected = {
            alias: (spec.dtype.as_numpy_dtype, None if spec.shape.rank is None else tuple(spec.shape.as_list()))
            for alias, spec in self.inputs.items()
        }

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the signature; anything the graph would reject is an INVALID_ARGUMENT, not a crash."""
        if inputs.keys() != self.inputs.keys():
            sent, wanted = set(inputs), set(self.inputs)
            raise ServableError(
                "INVALID_ARGUMENT",
                f"input size does not match signature: {len(sent)}!={len(wanted)} len({_names(sent)}) != "
                f"len({_names(wanted)}). Sent extra: {_names(sent - wanted)}. "
                f"Missing but required: {_names(wanted - sent)}.",
            )
        for i, (alias, (dtype, shape)) in enumerate(self._expected.items()):
            value = inputs[alias]
            if value.dtype != dtype:
                raise ServableError(
                    "INVALID_ARGUMENT",
                    f"Expects arg[{i}] to be {self.inputs[alias].dtype.name} but {tf.as_dtype(value.dtype).name} "
                    "is provided",
                )
            if shape is not None and (
                len(shape) != value.ndim
                or any(want not in (None, got) for want, got in zip(shape, value.shape, strict=True))
            ):
                raise ServableError(
                    "INVALID_ARGUMENT",
                    f"Input {alias} has shape {list(value.shape)}, incompatible with the signature's "
                    f"{_shape_text(self.inputs[alias].shape)}",
                )
        try:
            results = self._call(*(inputs[alias] for alias in self.inputs))
        except tf.errors.OpError as e:  # TF Serving's text is the runtime's, without Python's heading
            message = e.message.removeprefix("Graph execution error:").strip()
            raise ServableError(_TF_CODE_NAMES.get(e.error_code, "UNKNOWN"), message) from e
        return dict(zip(self._outputs, results, strict=True))


class Servable:
    """A loaded version, as TF Serving's C++ loader builds it: the ``serve`` MetaGraph imported into
    its own Session, variables restored by the SaverDef's restore op, then the main op run.

    Loading the way the stock server does (not with ``tf.saved_model.load``, whose object-based
    restore forgives more) means an export that TF Serving could not run fails here too.
    """

    def __init__(self, version: int, path: Path, session_config: tf.compat.v1.ConfigProto | None = None):
        self.version = version
        self.path = path
        graph = tf.Graph()
        self._session = tf.compat.v1.Session(graph=graph, config=session_config)
        tf_logger = tf.get_logger()  # the TF1 loader logs a deprecation pointing at the very loader not wanted here
        level = tf_logger.level
        tf_logger.setLevel(logging.ERROR)
        try:
            with graph.as_default():
                meta_graph = tf.compat.v1.saved_model.loader.load(self._session, [tf.saved_model.SERVING], str(path))
        finally:
            tf_logger.setLevel(level)
        # as stored, for metadata requests (TF2 exports also list ``__saved_model_init_op``)
        self.signature_defs: dict[str, meta_graph_pb2.SignatureDef] = dict(meta_graph.signature_def)
        self.signatures = {
            name: Signature(self._session, definition)
            for name, definition in self.signature_defs.items()
            if name != "__saved_model_init_op"  # what TF2 exports run at load; not callable
        }


def load_servable(version: int, path: Path, session_config: tf.compat.v1.ConfigProto | None = None) -> Servable:
    """Load one version directory; every failure becomes a ServableError with TF's code."""
    if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
        raise ServableError(
            "NOT_FOUND", f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {path}"
        )
    try:
        return Servable(version, path, session_config)
    except tf.errors.OpError as e:
        raise ServableError(_TF_CODE_NAMES.get(e.error_code, "UNKNOWN"), e.message) from e
    except FileNotFoundError as e:
        raise ServableError("NOT_FOUND", str(e)) from e
    except Exception as e:  # a broken export can fail in any way: it must end as END, not kill the poller
        raise ServableError("UNKNOWN", f"{type(e).__name__}: {e}") from e


class VersionManager:
    """Polls ``base_path`` and keeps the aspired version loaded; answers lookups and status."""

    def __init__(self, name: str, base_path: Path, metrics: Metrics, max_load_retries: int, retry_interval: float,
                 session_config: tf.compat.v1.ConfigProto | None = None):
        self.name = name
        self._session_config = session_config
        self.base_path = base_path
        self._metrics = metrics
        self._max_load_retries = max_load_retries
        self._retry_interval = retry_interval
        self._serving: tuple[dict[int, Servable], Servable | None] = ({}, None)  # (by version, latest)
        self._statuses: dict[int, VersionStatus] = {}
        self._retries: dict[int, tuple[int, float, ServableError]] = {}  # version -> (attempts, next try, error)
        self._stop = threading.Event()

    # -- lookups (request threads) --------------------------------------------------------------

    def servable(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        """The servable a request means: latest AVAILABLE, or a specific loaded version."""
        if label is not None:
            raise ServableError("INVALID_ARGUMENT", f"Unrecognized servable version label: {label}")
        by_version, latest = self._serving
        if name == self.name:
            found = latest if version is None else by_version.get(version)
            if found is not None:
                return found
        request = f"Latest({name})" if version is None else f"Specific({name}, {version})"
        raise ServableError("NOT_FOUND", f"Servable not found for request: {request}")

    def status(self, name: str, version: int | None = None) -> list[VersionStatus]:
        """Every version ever aspired, highest first; unloaded and failed ones stay as END."""
        statuses = self._statuses
        if name != self.name or not statuses:
            raise ServableError("NOT_FOUND", f"Could not find any versions of model {name}")
        if version is None:
            return [statuses[v] for v in sorted(statuses, reverse=True)]
        if version not in statuses:
            raise ServableError("NOT_FOUND", f"Could not find version {version} of model {name}")
        return [statuses[version]]

    # -- polling (one thread) -------------------------------------------------------------------

    def wait_until_available(self, poll_seconds: float) -> None:
        """Block until a first version is AVAILABLE, as TF Serving does before opening its ports."""
        while True:
            self.poll()
            if self._serving[1] is not None:
                return
            failed = {v: s for v, s in self._statuses.items() if s.state == "END" and s.error_code != "OK"}
            if failed:
                reasons = ", ".join(f"{{name: {self.name} version: {v}}}: {s.error_message}" for v, s in failed.items())
                raise ServableError("UNKNOWN", f"1 model(s) did not become available: {{{reasons}}}")
            time.sleep(max(poll_seconds, 0.1))

    def start_polling(self, poll_seconds: float) -> threading.Thread:
        """Poll every ``poll_seconds`` in a daemon thread (TF Serving: 0 means never again)."""

        def loop() -> None:
            while not self._stop.wait(poll_seconds):
                try:
                    self.poll()
                except Exception:  # the poller must outlive any surprise on disk
                    logger.exception("Polling %s failed", self.base_path)

        thread = threading.Thread(target=loop, name="version-poller", daemon=True)
        if poll_seconds > 0:
            thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def poll(self) -> None:
        """One pass: load the aspired (highest) version if needed, then unload every other one."""
        on_disk = self._scan()
        if not on_disk:
            logger.warning(
                "No versions of servable %s found under base path %s. Did you forget to name your leaf "
                "directory as a number (eg. '/1/')?",
                self.name,
                self.base_path,
            )
            self._unload_all_but(None)
            return
        aspired = max(on_disk)
        for version in [v for v in self._retries if v != aspired]:  # no longer aspired: give up on it
            self._set(version, "END", self._retries.pop(version)[2])
        if aspired not in self._serving[0] and self._due(aspired):
            self._load(aspired, on_disk[aspired])
        if aspired in self._serving[0]:
            self._unload_all_but(aspired)

    def _scan(self) -> dict[int, Path]:
        try:
            entries = list(os.scandir(self.base_path))
        except OSError:
            logger.warning("Could not find base path %s for servable %s", self.base_path, self.name)
            return {}
        found: dict[int, Path] = {}
        for entry in sorted(entries, key=lambda e: e.name):
            if _VERSION_NAME.fullmatch(entry.name) and entry.is_dir():
                found.setdefault(int(entry.name), Path(entry.path))
        return found

    def _due(self, version: int) -> bool:
        """Not failed for good, and not waiting out a retry interval."""
        if version in self._retries:
            return time.monotonic() >= self._retries[version][1]
        status = self._statuses.get(version)
        return status is None or status.error_code == "OK"

    def _load(self, version: int, path: Path) -> None:
        self._set(version, "LOADING")
        try:
            servable = load_servable(version, path, self._session_config)
        except ServableError as error:
            self._metrics.load_attempt(str(path), success=False)
            attempts = self._retries.get(version, (0, 0.0, error))[0] + 1
            if attempts > self._max_load_retries:
                self._retries.pop(version, None)
                self._set(version, "END", error)
                logger.error("Loading servable version {name: %s version: %d} failed: %s", self.name, version, error)
            else:
                self._retries[version] = (attempts, time.monotonic() + self._retry_interval, error)
                logger.warning(
                    "Loading servable version %d failed (attempt %d), will retry: %s", version, attempts, error
                )
            return
        self._metrics.load_attempt(str(path), success=True)
        self._retries.pop(version, None)
        by_version = {**self._serving[0], version: servable}
        self._serving = (by_version, by_version[max(by_version)])
        self._set(version, "AVAILABLE")
        logger.info("Successfully loaded servable version {name: %s version: %d}", self.name, version)

    def _unload_all_but(self, keep: int | None) -> None:
        by_version = self._serving[0]
        if not any(v != keep for v in by_version):
            return
        kept = {keep: by_version[keep]} if keep is not None else {}
        self._serving = (kept, kept.get(keep))
        for version in by_version:
            if version != keep:
                self._set(version, "END")
                logger.info("Successfully unloaded servable version {name: %s version: %d}", self.name, version)

    def _set(self, version: int, state: str, error: ServableError | None = None) -> None:
        status = VersionStatus(version, state, *((error.code, error.message) if error else ()))
        self._statuses = {**self._statuses, version: status}  # copy-on-write: readers never lock


def _names(names: set[str]) -> str:
    return "{" + ",".join(sorted(names)) + "}"


def _shape_text(shape: tf.TensorShape) -> str:
    if shape.rank is None:
        return "<unknown>"
    return "[" + ",".join("-1" if d is None else str(d) for d in shape.as_list()) + "]"
