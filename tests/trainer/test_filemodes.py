"""Issue 33 (6): what the trainer writes is private to its user and group, whatever umask it starts with."""

from __future__ import annotations

import os
import stat

from harness.project import write_config
from tests.conftest import run_cli


def _modes(root):
    """Mode of every file and folder the trainer created under models/, runs/ and data/."""
    found = {}
    for top in ("models", "runs", "data"):
        for dirpath, dirnames, filenames in os.walk(root / top):
            for name in [*dirnames, *filenames]:
                path = os.path.join(dirpath, name)
                if name != "split.key":  # written by the test, before the trainer ran
                    found[os.path.relpath(path, root)] = stat.S_IMODE(os.lstat(path).st_mode)
    return found


def _retrain(tmp_path, **env):
    config = write_config(tmp_path)
    result = run_cli("--config", str(config), "retrain", umask=0o022, env={**os.environ, **env})
    assert result.returncode == 0, result.stderr
    return _modes(tmp_path)


def test_a_retrain_writes_files_0640_and_folders_0750_even_from_a_permissive_shell(tmp_path):
    modes = _retrain(tmp_path)
    assert any(p.startswith("models/1/") for p in modes) and "runs/history.jsonl" in modes
    loose = {p: oct(m) for p, m in modes.items() if m & 0o027}
    assert not loose, f"readable or writable by other users: {loose}"
    assert modes["models/1"] == 0o750 and modes["runs/history.jsonl"] == 0o640


def test_modelops_umask_gives_back_world_readable_files(tmp_path):
    modes = _retrain(tmp_path, MODELOPS_UMASK="022")
    assert modes["models/1"] == 0o755 and modes["runs/history.jsonl"] == 0o644


def test_a_umask_that_is_not_octal_is_refused_naming_the_variable(tmp_path):
    result = run_cli("--config", str(write_config(tmp_path)), "status", env={**os.environ, "MODELOPS_UMASK": "rw-r"})
    assert result.returncode == 2
    assert "MODELOPS_UMASK" in result.stderr and "Traceback" not in result.stderr
