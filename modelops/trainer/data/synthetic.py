"""The demo schema's synthetic batches: the bootstrap on a fresh clone and ``simulate``."""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import numpy as np

from modelops.core.config import Config
from modelops.core.errors import UsageError
from modelops.core.timestamps import local_compact
from modelops.trainer.data.layout import free_name, incoming_dir

COLUMNS = ("x1", "x2", "label")  # the demo schema's synthetic batches
BOUNDARY = 1.0  # ground truth of the synthetic task: label = 1 when x1 + x2 > BOUNDARY


def synthetic(rows: int, seed: int, noise: float = 0.0, shift: float = 0.0, base_noise: float = 0.005):
    """Rows of the demo task: label = x1 + x2 > BOUNDARY + shift, a fraction of labels flipped.

    ``noise`` is the extra fraction of flipped labels on top of ``base_noise``; ``shift`` moves the
    decision boundary (concept drift).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0.5, 1.5, size=(rows, 2)).round(4).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > BOUNDARY + shift).astype(np.float32)
    flip = rng.random(rows) < min(1.0, base_noise + noise)
    y[flip] = 1.0 - y[flip]
    return x, y


def write_batch(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    """Write a batch atomically (temp name, then rename) so no reader sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows((f"{a:.4f}", f"{b:.4f}", int(c)) for (a, b), c in zip(x.tolist(), y.tolist(), strict=True))
    os.replace(tmp, path)


def simulate(config: Config, rows: int, noise: float, shift: float, seed: int | None) -> Path:
    """Write a new synthetic batch into ``incoming/`` for the next retrain to pick up (demo schema only)."""
    if not config.schema.is_demo:
        raise UsageError("simulate writes the demo's synthetic x1,x2,label rows; this config.json declares another "
                         "table, so drop your own CSV batches into data/incoming/ instead")
    seed = seed if seed is not None else time.time_ns() % 2**31
    path = free_name(incoming_dir(config), f"sim-{local_compact()}-seed{seed}.csv")
    write_batch(path, *synthetic(rows, seed=seed, noise=noise, shift=shift))
    return path
