"""What the tests and the benchmarks (scripts/bench.py) both run: real processes, a project's
config.json, a fake TF Serving's answers. Importable from the repository root without installing
anything (pytest puts the root on ``sys.path``; the scripts insert it); never in an image."""

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def tool(name: str) -> str:
    """The path of a command scripts/setup.sh installs (a Debian package, or a console script in
    the .venv). A missing one fails the test that needs it: a skip would let the check vanish."""
    path = shutil.which(name) or shutil.which(name, path=f"{Path(sys.executable).parent}:/usr/sbin:/sbin")
    if path is None:
        raise AssertionError(f"{name} is not installed: scripts/setup.sh installs it")
    return path
