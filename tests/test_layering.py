"""The house's layering, as the README draws it: which package may import which, checked on the
source of every file (imports inside functions included), and no import circle between files."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cli", "flows", "tasks", "blocks", "golive", "sandbox", "loopwatch")

# What each package may not import (first-party packages and the outside libraries that would
# make the core impure).
FORBIDDEN = {
    "golive": {"prefect", "httpx", "flows", "tasks", "blocks", "sandbox", "cli"},
    "sandbox": {"golive", "flows", "tasks", "blocks", "cli", "prefect"},
    "blocks": {"flows", "tasks", "sandbox", "cli"},
    "tasks": {"flows", "sandbox", "cli"},
    "flows": {"sandbox", "cli"},
    "cli": set(),
    # The loop-lag and GC probes any asyncio service imports: the standard library and prometheus_client only.
    "loopwatch": {"golive", "flows", "tasks", "blocks", "cli", "sandbox", "prefect", "httpx"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path, module: str, is_package: bool) -> set[str]:
    """Every module name this file imports, wherever the import statement stands."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names.add(prefix)
            names.update(f"{prefix}.{alias.name}" for alias in node.names)
    return names


MODULES = _modules()
GRAPH = {
    name: {imported for imported in _imports(path, name, path.name == "__init__.py") if imported in MODULES
           and imported != name}
    for name, path in MODULES.items()
}


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_what_its_layer_allows(package):
    offences = []
    for name, path in MODULES.items():
        if name.split(".")[0] != package:
            continue
        for imported in _imports(path, name, path.name == "__init__.py"):
            if imported.split(".")[0] in FORBIDDEN[package]:
                offences.append(f"{path.relative_to(ROOT)} imports {imported}")
    assert offences == []


def test_no_import_circle_between_files():
    # Tarjan's strongly connected components over the first-party import graph.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    assert circles == []


def test_no_circle_between_packages():
    edges = {(a.split(".")[0], b.split(".")[0]) for a, targets in GRAPH.items() for b in targets}
    mutual = sorted((a, b) for a, b in edges if a < b and (b, a) in edges)
    assert mutual == []


def test_the_walk_sees_deferred_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from prefect import flow\n    import httpx.client\n")
    assert {"prefect", "prefect.flow", "httpx.client"} <= _imports(source, "golive.m", False)
