"""Shared fixtures: render the working tree's template, isolate git."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import REAL_CACHES, Render, RenderedVariants, copy_template
from template_repos import git

from mlopsify import TemplateSource, new_project

# Under `make test`, make's own variables would reach every make a test runs, which then
# prints "Entering directory" lines and calls itself make[1]: tests run make as a user does.
for _variable in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"):
    os.environ.pop(_variable, None)


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A git identity of its own and no user or system config, like Copier's own tests."""
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test User\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var, value in REAL_CACHES.items():
        monkeypatch.setenv(var, value)
    # Copier keeps mirrors of remote templates (the canonical URL) in a cache that concurrent
    # runs corrupt for each other; each test gets its own, as mlopsify leaves the cache to Copier.
    monkeypatch.setenv("COPIER_CACHE_DIR", str(tmp_path_factory.mktemp("copier-cache")))


@pytest.fixture(scope="session")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree's copier.yml and template/ as a plain directory (fast, no git clone),
    with the runtime's wheel that a release carries."""
    return copy_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def tagged_template(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree's template committed and tagged v9.0.0 in a scratch repository, so that
    `add` updates a project the way it would from a shipped release."""
    repo = tmp_path_factory.mktemp("release") / "template"
    shutil.copytree(template_dir, repo)
    git("init", "--quiet", "--initial-branch=main", cwd=repo)
    git("add", "--all", cwd=repo)
    git("commit", "--quiet", "-m", "release", cwd=repo)
    git("tag", "v9.0.0", cwd=repo)
    return repo


@pytest.fixture(scope="session")
def rendered(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> RenderedVariants:
    """The session's one cache of rendered variants, shared by every test module (read only)."""
    return RenderedVariants(template_dir, tmp_path_factory.mktemp("rendered"))


@pytest.fixture
def render(template_dir: Path, tmp_path: Path) -> Render:
    """Render the working tree's template with ``answers`` into ``tmp_path/name``; returns the project."""

    def _render(name: str = "demo-project", **answers: Any) -> Path:
        return new_project(
            tmp_path / name, data=answers, defaults=True, template=TemplateSource.at(template_dir)
        )

    return _render


@pytest.fixture
def chdir_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with slow tests first: `make test` hands whole modules to its two workers
    (--dist loadfile), and starting the long ones first keeps one worker from finishing the
    run alone. The order is stable otherwise, and the same in every worker."""
    slow_modules = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_modules)
