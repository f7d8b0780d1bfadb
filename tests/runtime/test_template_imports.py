"""Every name a generated project imports from the runtime exists in it.

The template's code and tests take parts of `mlopsify_runtime` by name; a runtime change that
moves one breaks every project's `make test` (0.6.0's `evaluate.baseline_metrics` did, until it
was re-exported). This finds it in a second, without generating a project.
"""

from __future__ import annotations

import importlib
import re

import pytest
from helpers import ROOT

IMPORT = re.compile(r"^\s*from (mlopsify_runtime[\w.]*) import (\([^)]*\)|.*)$", re.M)


def template_imports() -> list[tuple[str, str, str]]:
    """(file, module, name) of every `from mlopsify_runtime... import name` in template/."""
    found = []
    for path in sorted((ROOT / "template").rglob("*")):
        if path.is_file() and path.suffix in {".py", ".jinja"}:
            for module, names in IMPORT.findall(path.read_text(encoding="utf-8")):
                listed = re.sub(r"#.*", "", names).strip("()")  # comments out, the parentheses off
                for name in re.split(r"\s*,\s*", listed.strip()):
                    if name:
                        found.append((str(path.relative_to(ROOT)), module, name.split()[0]))
    return found


def test_the_template_imports_something_from_the_runtime() -> None:
    assert (
        "template/tests/test_model_quality.py.jinja",
        "mlopsify_runtime.evaluate",
        "baseline_metrics",
    ) in (template_imports())


@pytest.mark.parametrize(("path", "module", "name"), template_imports())
def test_each_name_the_template_imports_from_the_runtime_exists(
    path: str, module: str, name: str
) -> None:
    assert hasattr(importlib.import_module(module), name), (
        f"{path} imports {name} from {module}, which has none"
    )
