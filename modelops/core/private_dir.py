"""A folder only this user can enter, created fresh: the frontend's metrics files live in one.

``PROMETHEUS_MULTIPROC_DIR`` used to default to ``/tmp/modelops-web-metrics-<port>``: a name
another local user could create first, and then read or forge the frontend's counters. Unset, a
new folder with an unpredictable name is made (``mkdtemp``, mode 0700); set, the folder is made
(or emptied) with mode 0700, and one that is not this user's is refused by name.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile

from modelops.core.errors import ConfigError


def fresh_private_dir(path: str | None, prefix: str) -> str:
    """An empty folder with mode 0700 at ``path`` (wiped first), or a new one in the temp folder."""
    if not path:
        return tempfile.mkdtemp(prefix=prefix)
    if os.path.islink(path):
        raise ConfigError(f"{path} is a symbolic link; point PROMETHEUS_MULTIPROC_DIR at a real folder")
    try:
        os.makedirs(path, mode=0o700)
    except FileExistsError:
        _empty(path)  # emptied rather than removed: it may be a mount point (an emptyDir, a tmpfs)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise ConfigError(f"{path} is not a folder of this user (another user may have made it first); "
                          "point PROMETHEUS_MULTIPROC_DIR elsewhere or leave it unset")
    os.chmod(path, 0o700)
    return path


def _empty(path: str) -> None:
    if not os.path.isdir(path) or os.lstat(path).st_uid != os.getuid():
        return  # refused by the caller, naming the folder
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
