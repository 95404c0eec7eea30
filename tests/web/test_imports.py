"""The frontend image has no TensorFlow, numpy or requests, nor the local server package: importing
the frontend must need none of them, and every module it loads must be one its Dockerfile copies."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import PurePosixPath

import pytest

from tests.web.conftest import REPO

FRONTEND_MODULES = ["modelops.web", "app", "modelops.web.gunicorn_conf", "modelops.core.tfserving_client"]


def _loaded_after_import(module: str, report: str) -> list[str]:
    code = f"import sys, {module}\n{report}\n"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.parametrize("module", FRONTEND_MODULES)
def test_importing_the_frontend_loads_nothing_its_image_lacks(module):
    heavy = _loaded_after_import(
        module, "print(' '.join(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'numpy', 'keras', "
                "'requests')))"
    )
    assert heavy == []


def test_the_frontend_image_copies_every_module_the_frontend_loads_and_not_the_server():
    copied = [PurePosixPath(source.rstrip("/")) for sources in
              re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", (REPO / "Dockerfile.frontend").read_text(), re.M)
              for source in sources.split()]

    def shipped(path: str) -> bool:
        file = PurePosixPath(path)
        return any(file.match(str(source)) or source in file.parents for source in copied)

    loaded = _loaded_after_import(
        "modelops.web, modelops.web.gunicorn_conf",
        "import pathlib; root = pathlib.Path.cwd().resolve()\n"
        "print(' '.join(str(pathlib.Path(m.__file__).resolve().relative_to(root)) for n, m in list(sys.modules.items())"
        " if n.split('.')[0] == 'modelops'))",
    )
    assert loaded and all(shipped(path) for path in loaded), [p for p in loaded if not shipped(p)]
    assert not any(shipped(str(path.relative_to(REPO))) for path in (REPO / "modelops/serving").glob("*.py"))
