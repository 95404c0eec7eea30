"""What every benchmark reports beside its figures: the machine, and medians of rounds."""

from __future__ import annotations

import os
import platform
import statistics
from pathlib import Path


def machine() -> str:
    """``2 cores (CPU model), Python 3.11.2``: enough to tell two runs' machines apart."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                 platform.machine())
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}"


def p50_rounds(p50s: dict[str, list[float]], seconds: float, rounds: int) -> dict:
    """A p50-per-round measurement as the benches report it: every round's p50 and their medians."""
    return {"machine": machine(), "seconds_per_round": seconds, "rounds": rounds, "p50_ms": p50s,
            "median_p50_ms": {name: round(statistics.median(values), 3) for name, values in p50s.items()}}
