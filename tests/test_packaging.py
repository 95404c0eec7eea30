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


LOCKS = {"requirements.trainer.lock": "requirements.trainer.txt", "requirements.frontend.lock": "requirements.frontend.txt"}


def _lock(name: str) -> dict[str, tuple[str, list[str]]]:
    """A hash-pinned lock's packages: normalised name -> (version, hashes)."""
    entries: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in (REPO / name).read_text().splitlines():
        if line[:1].isalnum():
            pkg, _, version = line.split(" ")[0].partition("==")
            current = pkg.lower().replace("_", "-").replace(".", "-")
            entries[current] = (version, [])
        elif line.strip().startswith("--hash=sha256:") and current:
            entries[current][1].append(line.split()[0])
    return entries


@pytest.mark.parametrize("lock,source", sorted(LOCKS.items()))
def test_each_image_lock_pins_pyprojects_versions_with_hashes(lock, source):
    """The Dockerfiles install the locks with --require-hashes: each pin of pyproject.toml for that image
    is in its lock at the same version, and every package in it (transitive ones too) has a sha256."""
    entries = _lock(lock)
    assert entries and all(hashes for _, hashes in entries.values()), f"{lock}: a package without --hash"
    pins = {p.split("==")[0].lower(): p.split("==")[1] for p in PROJECT["dependencies"]}
    for requirement in _requirements(source):
        name = requirement.split("==")[0].strip().lower()
        assert entries.get(name, ("missing",))[0] == pins[name], f"{lock}: {name} is not pinned as in pyproject.toml"


def test_the_dockerfiles_install_only_hash_pinned_locks():
    for dockerfile in ("Dockerfile.trainer", "Dockerfile.frontend"):
        installs = [line for line in (REPO / dockerfile).read_text().splitlines() if "pip install" in line]
        assert installs and all("--require-hashes" in line and ".lock" in line for line in installs), dockerfile
    serving_api = _lock("requirements.serving-api.lock")
    assert list(serving_api) == ["tensorflow-serving-api"] and serving_api["tensorflow-serving-api"][1]
    assert f"tensorflow-serving-api=={serving_api['tensorflow-serving-api'][0]}" in (REPO / "scripts/setup.sh").read_text()
