"""The modules of src/mlopsify import each other without a cycle (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import ROOT

PACKAGE = ROOT / "src" / "mlopsify"


def imported_modules(path: Path) -> set[str]:
    """The package's modules that ``path`` imports, anywhere in it (functions and type checks too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:  # from . import _git
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlopsify."):
            found.add(node.module.split(".")[1])  # type: ignore[union-attr]
        elif isinstance(node, ast.Import):
            found.update(
                alias.name.split(".")[1]
                for alias in node.names
                if alias.name.startswith("mlopsify.")
            )
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports; ``__init__`` (the lazy facade) left out."""
    modules = {path.stem: path for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    return {name: imported_modules(path) & set(modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that starts and ends at the same module, or None."""
    state: dict[str, str] = {}  # "visiting" or "done"

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = "visiting"
        for imported in sorted(graph[module]):
            if state.get(imported) == "visiting":
                return (
                    [*path[path.index(imported) :], imported]
                    if imported in path
                    else [module, imported]
                )
            if imported not in state:
                cycle = visit(imported, [*path, imported])
                if cycle:
                    return cycle
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module, [module])
            if cycle:
                return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_src_mlopsify_has_no_import_cycle():
    graph = import_graph()
    assert {"cli", "errors", "template", "rendering", "updating"} <= set(graph)
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_template_knowledge_has_one_home():
    """Modules that need the template's questions ask template.py, not each other."""
    graph = import_graph()
    assert "cli" not in set().union(*graph.values())
    assert graph["errors"] <= {"changes"}
    assert "creation" not in graph["updating"]
    assert "updating" not in graph["assessment"] | graph["errors"]
    assert "services" not in graph["assessment"]
