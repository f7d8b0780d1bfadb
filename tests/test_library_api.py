"""The library's contract: typed answers, no change to the process environment, declared imports."""

from __future__ import annotations

import ast
import inspect
import sys
from collections.abc import Mapping
from importlib.metadata import packages_distributions, requires
from pathlib import Path
from typing import Any, get_type_hints

from helpers import ROOT
from packaging.requirements import Requirement

import mlopsify

PACKAGE = ROOT / "src" / "mlopsify"
PUBLIC = ["new_project", "update_project", "add_service", "adopt_repository"]


def test_public_functions_take_answers_as_a_mapping():
    for name in PUBLIC:
        function = getattr(mlopsify, name)
        parameters = inspect.signature(function).parameters
        assert "data_pairs" not in parameters and "answers_file" not in parameters, name
        assert get_type_hints(function)["data"] == Mapping[str, Any] | None, name


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(encoding="utf-8"))) for p in sorted(PACKAGE.glob("*.py"))]


def test_the_library_never_changes_the_process_environment():
    """Copier reads its settings from os.environ: a library that sets them there changes them
    for everything else in the process. mlopsify passes git its settings through plumbum."""
    writes = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            text = ast.unparse(node)
            if (
                isinstance(node, (ast.Assign, ast.Delete, ast.AugAssign)) and "os.environ[" in text
            ) or (
                isinstance(node, ast.Call)
                and text.startswith(
                    ("os.environ.update", "os.environ.setdefault", "os.environ.pop", "os.putenv")
                )
            ):
                writes.append(f"{path.name}:{node.lineno}: {text}")
    assert writes == []


def test_every_third_party_import_is_a_declared_dependency():
    # What the installed mlopsify declares (the dev extra does not count: users lack it).
    declared = {
        Requirement(r).name.lower() for r in requires("mlopsify") or [] if "extra ==" not in r
    }
    distributions = packages_distributions()
    imported: set[str] = set()
    for _, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    # The runtime is no dependency: every template release in the shipped bundle carries its
    # wheel, which `fleet update` puts on its workers' path (mlopsify.fleet_status.runtime_wheel).
    third_party = {
        name
        for name in imported
        if name not in sys.stdlib_module_names and name not in {"mlopsify", "mlopsify_runtime"}
    }
    assert "plumbum" in third_party
    undeclared = {
        name: distributions.get(name)
        for name in third_party
        if not {d.lower() for d in distributions.get(name, [name])} & declared
    }
    assert undeclared == {}
