"""pyproject.toml declares what the images install and console scripts that exist."""

import importlib
import tomllib

import pytest

from harness import REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


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
