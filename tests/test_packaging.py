"""pyproject.toml declares what the images install and console scripts that exist, and ships the
package without the tests' harness."""

import importlib
import tomllib

import pytest
from setuptools import find_packages

from harness import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def _requirements(name: str) -> set[str]:
    lines = (REPO / name).read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.lstrip().startswith(("#", "-r"))}


def test_dependencies_are_the_images_pins():
    images = _requirements("requirements.trainer.txt") | _requirements("requirements.frontend.txt")
    assert set(PROJECT["dependencies"]) == images


@pytest.mark.parametrize("script", sorted(PROJECT["scripts"]))
def test_console_scripts_name_a_callable(script):
    module, _, function = PROJECT["scripts"][script].partition(":")
    assert callable(getattr(importlib.import_module(module), function))


def test_the_package_version_lineage_records_is_pyprojects():
    import modelops

    assert modelops.__version__ == PROJECT["version"]


def test_the_distribution_holds_modelops_and_not_the_harness():
    packages = find_packages(str(REPO), include=PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"])
    assert "modelops.web" in packages and "modelops.trainer.retrain" in packages
    assert not [name for name in packages if not name.startswith("modelops")], packages
