"""Stop signals for a retrain: SIGINT/SIGTERM abort it, except while a version is published or
retired together with its history record, so no served version is ever left unrecorded. A run's
deadline (SIGALRM) unwinds it the same way and is held back at the same places."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
HELD_SIGNALS = (*STOP_SIGNALS, signal.SIGALRM)
_interrupted = threading.Event()  # a stop signal arrived inside interrupts()
_timed_out = threading.Event()  # the deadline passed inside deadline()


class RunTimedOut(KeyboardInterrupt):
    """The run passed its deadline; unwinds like a stop signal."""


@contextlib.contextmanager
def interrupts() -> Iterator[None]:
    """SIGTERM and SIGINT raise KeyboardInterrupt once; later ones are ignored while it unwinds.

    The signal is also remembered (``interrupted()``): raised inside TensorFlow's own Python code
    (tf.data, Keras callbacks), the KeyboardInterrupt can come out as another error, and the run
    must still be recorded as interrupted rather than as that error.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum, _frame):
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        _interrupted.set()
        raise KeyboardInterrupt

    _interrupted.clear()
    previous = {s: signal.signal(s, interrupt) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _interrupted.clear()  # a later run in this process (a test, a service) starts uninterrupted


def interrupted() -> bool:
    """Whether a stop signal arrived inside the current ``interrupts()`` block."""
    return _interrupted.is_set()


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Defer SIGINT/SIGTERM/SIGALRM to the end of the block (re-raised only if the block succeeded)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {s: signal.signal(s, lambda signum, _: received.append(signum)) for s in HELD_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received:
        signal.raise_signal(received[0])


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise RunTimedOut in the main thread once the block has lasted ``seconds`` (SIGALRM)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signum, _frame):
        _timed_out.set()
        raise RunTimedOut

    _timed_out.clear()
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        _timed_out.clear()


def timed_out() -> bool:
    """Whether the current ``deadline()`` block ran out of time."""
    return _timed_out.is_set()


def stop_reason(max_run_seconds: float) -> str:
    """Why a run stopped early, for its ``failed`` or ``unverified`` record: its deadline or a stop signal."""
    if timed_out():
        return f"timed out (the run passed schedule.max_run_seconds={max_run_seconds:g})"
    return "interrupted (SIGINT/SIGTERM)"
