"""The command line's exit codes (``retrain_pipeline.py``, ``train_tf.py``, the trainer service).

Cron, the scheduler and ``modelops.stack`` read them, so their numbers never change.
"""

from __future__ import annotations

import enum
import sys

from modelops.core.errors import ConfigError, UsageError


class ExitCode(enum.IntEnum):
    OK = 0  # promoted, or the command succeeded
    FAILED = 1  # a step failed, the promotion was rolled back, or another run holds the lock
    USAGE = 2  # usage or config.json error
    REJECTED = 3  # the gate rejected the candidate; the served version is unchanged
    ROW_ERRORS = 4  # score: some rows had errors (marked in the output), the others were scored
    UNSCORED = 5  # score: nothing was scored (no row valid, serving unreachable, or the version's record damaged)


MEANINGS: dict[int, str] = {  # for log lines about a finished run
    ExitCode.OK: "promoted",
    ExitCode.REJECTED: "rejected by the gate",
    ExitCode.USAGE: "config error",
    ExitCode.FAILED: "failed or rolled back (see last_train_log.txt)",
}


def usage_exit(exc: ConfigError | UsageError) -> int:
    """Say a config.json or usage mistake on stderr as every entry point does; the exit code for it."""
    prefix = "config error" if isinstance(exc, ConfigError) else "error"
    print(f"{prefix}: {exc}", file=sys.stderr)
    return ExitCode.USAGE
