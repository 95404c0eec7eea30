"""A throwaway project's config.json: the repository's, trained fast and split the same way every run."""

from __future__ import annotations

import json
from pathlib import Path

from harness import REPO

TEST_SPLIT_KEY = "00" * 32


def write_config(directory: Path, **sections) -> Path:
    """Copy the repo's config.json into ``directory``, overriding keys per section.

    Tests train for 5 epochs (about 2 s, still well above the 97% gate); verification waits
    0.5 s for an absent serving and 20 s for a running one to load a version; ingest judges
    batches at once (no settle wait).
    """
    raw = json.loads((REPO / "config.json").read_text())
    raw["train"]["epochs"] = 5
    raw["verify"].update(unreachable_seconds=0.5, timeout_seconds=20.0)
    raw["data"]["settle_seconds"] = 0  # batches the tests write are complete: judge them at once
    for section, values in sections.items():
        if isinstance(values, dict) and section not in ("features", "label"):  # the schema is replaced whole
            raw[section].update(values)
        else:
            raw[section] = values
    path = directory / "config.json"
    path.write_text(json.dumps(raw, indent=2))
    key = directory / "runs" / "split.key"  # a fixed split: the same eval rows, so the same accuracy, every run
    key.parent.mkdir(exist_ok=True)
    if not key.exists():
        key.write_text(TEST_SPLIT_KEY + "\n")
    return path
