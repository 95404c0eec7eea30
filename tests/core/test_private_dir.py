"""Issue 33 finding 6: the frontend's metrics folder is private (0700) and fresh at every start."""

from __future__ import annotations

import os
import stat

import pytest

from modelops.core.errors import ConfigError
from modelops.core.private_dir import fresh_private_dir


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_unset_means_a_new_unpredictable_folder_only_this_user_can_enter():
    first, second = fresh_private_dir(None, "modelops-test-"), fresh_private_dir(None, "modelops-test-")
    try:
        assert first != second
        assert _mode(first) == _mode(second) == 0o700
    finally:
        os.rmdir(first)
        os.rmdir(second)


def test_a_named_folder_is_emptied_and_made_private(tmp_path):
    folder = tmp_path / "metrics"
    (folder / "old").mkdir(parents=True)
    (folder / "counter_999.db").write_bytes(b"a previous run's counts")
    (folder / "old" / "gauge.db").write_bytes(b"")
    folder.chmod(0o777)
    assert fresh_private_dir(str(folder), "") == str(folder)
    assert list(folder.iterdir()) == []
    assert _mode(folder) == 0o700
    assert _mode(fresh_private_dir(str(tmp_path / "new" / "metrics"), "")) == 0o700


def test_a_symbolic_link_is_refused_by_name(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "metrics").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="metrics is a symbolic link"):
        fresh_private_dir(str(tmp_path / "metrics"), "")
