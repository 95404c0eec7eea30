"""The folders of modelops/ say what may import what (docs: DESIGN "Boundaries"), and the images
rely on it: the frontend image holds only core/ and web/. Every import statement counts, at module
level, inside functions and under TYPE_CHECKING, so a lazy import cannot hide a crossing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "modelops"
# What neither core/ nor web/ may import: the frontend image does not install them.
HEAVY = {"numpy", "tensorflow", "keras", "tensorflow_serving"}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, text: str | None = None) -> list[tuple[int, str]]:
    """``(line, absolute module)`` for every import statement in the file (or ``text`` placed at
    ``path``), relative ones resolved."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8") if text is None else text)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            module = ".".join(filter(None, [base, node.module]))
            # ``from modelops import trainer`` imports a folder just as ``import modelops.trainer`` does
            found += [(node.lineno, f"{module}.{alias.name}" if module == "modelops" and is_module(alias.name)
                       else module) for alias in node.names]
    return found


def is_module(name: str) -> bool:
    """Whether ``modelops.<name>`` is a module or folder (not a name such as ``__version__``)."""
    return (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()


def folder(module: str) -> str | None:
    """``core``, ``web``, ``trainer``, ``localserving``, ``savedmodel``... for a modelops module, else None."""
    parts = module.split(".")
    return parts[1] if parts[0] == "modelops" and len(parts) > 1 else None


def crossing(source: str, target: str) -> str | None:
    """Why ``source`` (a modelops module) must not import ``target``, or None when it may."""
    here, there = folder(source), folder(target)
    if target.split(".")[0] in HEAVY and here in ("core", "web"):
        return f"{here}/ has no numpy or TensorFlow"
    if here == "core" and there not in (None, "core"):
        return "core/ imports nothing from the other folders"
    if here == "web" and there not in (None, "core", "web"):
        return "the frontend image holds core/ and web/ only"
    if {here, there} == {"web", "trainer"}:
        return "web/ and trainer/ never import each other"
    if here == "localserving" and there in ("trainer", "web"):
        return "the local server imports neither the trainer nor the frontend"
    return None


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_folder_is_checked():
    folders = {folder(module_name(path)) for path in MODULES}
    assert {"core", "web", "trainer", "localserving", "savedmodel"} <= folders


@pytest.mark.parametrize("path", MODULES, ids=lambda path: module_name(path))
def test_imports_stay_inside_the_boundaries(path):
    source = module_name(path)
    broken = [f"{path.relative_to(REPO)}:{line} imports {target}: {reason}"
              for line, target in imports(path) if (reason := crossing(source, target))]
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize(("source", "target", "allowed"), [
    ("modelops.core.lineage", "modelops.trainer.data.dataset", False),
    ("modelops.core.lineage", "numpy", False),
    ("modelops.core.lineage", "modelops", True),
    ("modelops.core.lineage", "modelops.core.paths", True),
    ("modelops.web.pages", "modelops.core.lineage", True),
    ("modelops.web.pages", "modelops.savedmodel", False),
    ("modelops.web.pages", "modelops.stack", False),
    ("modelops.web.pages", "keras", False),
    ("modelops.trainer.cli", "modelops.web", False),
    ("modelops.trainer.cli", "numpy", True),
    ("modelops.localserving.rest", "modelops.trainer.model", False),
    ("modelops.localserving.rest", "modelops.savedmodel", True),
])
def test_the_rules_catch_a_crossing(source, target, allowed):
    assert (crossing(source, target) is None) is allowed


def test_imports_are_read_inside_functions_under_type_checking_and_relative():
    text = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from modelops.trainer.gate import Gate\n"
            "def f():\n    import numpy as np\n    from ..core import store\n    from . import inputs\n"
            "from modelops import trainer\n")
    found = sorted(imports(PACKAGE / "web" / "not_written.py", text))
    assert [target for _, target in found] == [
        "typing", "modelops.trainer.gate", "numpy", "modelops.core", "modelops.web", "modelops.trainer"]
