"""The project's timestamp formats: ISO 8601 UTC in records and logs, compact UTC in run ids.

History records, notifications, the run log and the lock file share one format, which the
trainer metrics parse back; run ids (and so ``runs/<id>-v<N>`` directories) sort by time.
"""

from __future__ import annotations

import calendar
import time

ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"
COMPACT = "%Y%m%dT%H%M%S"  # + "Z" for UTC run ids; local time in simulated batch file names


def now_iso() -> str:
    return time.strftime(ISO_UTC, time.gmtime())


def parse_iso(text: str) -> float:
    """Epoch seconds of a ``now_iso()`` timestamp; ValueError if it is not one."""
    return float(calendar.timegm(time.strptime(text, ISO_UTC)))


def run_id() -> str:
    """A run's id: the UTC start time to the second, e.g. ``20251109T020005Z``."""
    return time.strftime(COMPACT + "Z", time.gmtime())


def local_compact() -> str:
    return time.strftime(COMPACT)
