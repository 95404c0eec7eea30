"""A folder only this user can enter, created fresh: the frontend's metrics files live in one.

``PROMETHEUS_MULTIPROC_DIR`` used to default to ``/tmp/modelops-web-metrics-<port>``: a name
another local user could create first, and then read or forge the frontend's counters. Unset, a
new folder with an unpredictable name is made (``mkdtemp``, mode 0700); set, the folder is wiped
and made again with mode 0700, and one that cannot be (another user's) is refused by name.
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
    shutil.rmtree(path, ignore_errors=True)
    try:
        os.makedirs(path, mode=0o700)
    except FileExistsError:
        raise ConfigError(f"{path} could not be wiped (another user's folder?); point PROMETHEUS_MULTIPROC_DIR "
                          "elsewhere or leave it unset") from None
    os.chmod(path, 0o700)
    info = os.lstat(path)
    if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) != 0o700:
        raise ConfigError(f"{path} is not a private folder of this user; point PROMETHEUS_MULTIPROC_DIR elsewhere")
    return path
