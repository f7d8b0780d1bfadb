"""One environment shared by several projects: the hooks are those of the project that runs.

The entry points are stand-ins (monkeypatched `entry_points`): installing two real
distributions into the test environment is what the generated-project tests do end to end
(tests/test_own_data.py shares one environment between four projects).
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from mlopsify_runtime import hooks


class Dist:
    def __init__(self, name: str) -> None:
        self.name = name


class Entry:
    def __init__(self, dist: str, value: str) -> None:
        self.name, self.value, self.dist = "hooks", value, Dist(dist)


@pytest.fixture
def two_projects(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for package in ("churn_model", "price_model"):
        module = types.ModuleType(f"{package}.hooks")
        module.preprocess = lambda record, package=package: {**record, "by": package}  # type: ignore[attr-defined]
        monkeypatch.setitem(__import__("sys").modules, f"{package}.hooks", module)
    entries = [Entry("churn-model", "churn_model.hooks"), Entry("price_model", "price_model.hooks")]
    monkeypatch.setattr(
        hooks, "entry_points", lambda group: entries if group == hooks.GROUP else []
    )
    monkeypatch.chdir(tmp_path)
    hooks.hooks_module.cache_clear()
    yield tmp_path
    hooks.hooks_module.cache_clear()


def test_the_project_in_the_working_directory_chooses_its_hooks(two_projects: Path):
    (two_projects / "pyproject.toml").write_text(
        '[project]\nname = "Price-Model"\nversion = "0.1.0"\n'
    )
    preprocess = hooks.hook("preprocess")
    assert preprocess is not None and preprocess({"x": 1}) == {"x": 1, "by": "price_model"}


def test_without_a_project_here_several_hooks_modules_are_one_clear_error(two_projects: Path):
    with pytest.raises(hooks.HookError) as refused:
        hooks.hook("preprocess")
    assert str(refused.value) == (
        "more than one mlopsify.hooks entry point (churn_model.hooks, price_model.hooks) and none of "
        "the project in this directory: run from the project's root, or give each project an "
        "environment of its own"
    )
