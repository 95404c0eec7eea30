"""The frontend image has no TensorFlow, numpy or requests: importing the frontend must not need them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.web.conftest import REPO


@pytest.mark.parametrize("module", ["modelops.web", "app", "modelops.web.gunicorn_conf"])
def test_importing_the_frontend_loads_nothing_its_image_lacks(module):
    code = (
        f"import sys, {module}\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'numpy', 'keras', 'requests'))\n"
        "print(' '.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
