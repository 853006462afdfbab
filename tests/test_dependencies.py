"""Every third-party import is declared in pyproject.toml: the packages' in `dependencies` or in
a feature's extra (e.g. the operator card's), the tests' there or in the test extra, the
benchmarks' there or in the bench extra. Deferred imports count: a function that runs once a
week still needs its library installed."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("golive", "flows", "tasks", "blocks", "cli", "sandbox", "loopwatch")
# The benchmarks are scripts that import each other from their own folder.
FIRST_PARTY = {*PACKAGES, "tests", "benchmarks", *(p.stem for p in (ROOT / "benchmarks").glob("*.py"))}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _feature_extras() -> tuple[str, ...]:
    return tuple(sorted(set(_project().get("optional-dependencies", {})) - {"test", "bench"}))


def _declared(*extras: str) -> set[str]:
    project = _project()
    requirements = [*project["dependencies"], *(r for e in extras for r in project["optional-dependencies"][e])]
    return {_normal(re.match(r"[A-Za-z0-9_.-]+", r).group()) for r in requirements}


def _imported(folders: tuple[str, ...]) -> dict[str, str]:
    """Top-level third-party module → the first file that imports it."""
    found: dict[str, str] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize(("folders", "extras"), [
    (PACKAGES, ()),
    (("tests",), ("test",)),
    (("benchmarks",), ("bench",)),
])
def test_every_import_is_declared(folders, extras):
    distributions = packages_distributions()
    declared = _declared(*extras, *_feature_extras())
    undeclared = []
    for module, where in _imported(folders).items():
        names = {_normal(d) for d in distributions.get(module, [])}
        if not names & declared:
            undeclared.append(f"{module} ({where}; distribution {', '.join(sorted(names)) or 'not installed'})")
    assert undeclared == []


def test_numpy_is_for_the_benchmarks_only():
    assert "numpy" not in _imported(PACKAGES)
    assert "numpy" not in _declared() and "numpy" in _declared("bench")
