"""The run log: one progress line per numbered step on the console, every line (tracebacks
included) in a file such as ``last_train_log.txt``. A log that cannot be written never fails a run."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import IO

from modelops.core.timestamps import now_iso


class RunLog:
    """Progress lines to the console, everything to the run log file."""

    def __init__(self, path: Path, steps: tuple[str, ...], echo: Callable[[str], None] = print):
        self.path, self.steps, self.echo = path, steps, echo
        self._fh: IO[str] | None = None
        self._broken = False

    def __enter__(self) -> RunLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 (closed in __exit__)
        return self

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):  # a full disk, already reported by detail()
                self._fh.close()

    def step(self, name: str, message: str) -> None:
        """The progress line of step ``name``, numbered by its place in ``steps``."""
        self.note(f"[{self.steps.index(name) + 1}/{len(self.steps)}] {name}: {message}")

    def note(self, message: str) -> None:
        """A progress line within a step: shown and logged, not numbered."""
        self.echo(message)
        self.detail(message)

    def detail(self, message: str) -> None:
        """Log a line; a run log that cannot be written (disk full) is reported once, never fatal."""
        assert self._fh is not None, "RunLog used outside its with block"
        try:
            self._fh.write(f"{now_iso()} {message}\n")
            self._fh.flush()
        except OSError as exc:
            if not self._broken:
                self._broken = True
                self.echo(f"warning: the run log {self.path} could not be written ({exc.strerror or exc})")
