"""Shared fixtures: render the working tree's template, isolate git, require real tools."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlopsify import TemplateSource, new_project

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# Caches stay in the real home, so environments install from cache while HOME is isolated.
REAL_CACHES = {
    "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv")),
    "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")),
    "NPM_CONFIG_CACHE": os.environ.get("NPM_CONFIG_CACHE", str(Path.home() / ".npm")),
}


def require_tool(name: str) -> str:
    """Path of a checker the test needs; under CI=true a missing tool fails instead of skipping."""
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed: run `make bootstrap`"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def run(
    *args: str | Path,
    cwd: Path,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run a command, returning its output; on failure the assertion shows both streams."""
    completed = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and completed.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {completed.returncode}\n"
            f"--- stdout\n{completed.stdout[-6000:]}\n--- stderr\n{completed.stderr[-6000:]}"
        )
    return completed


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


@pytest.fixture(scope="session")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree's copier.yml and template/ as a plain directory (fast, no git clone)."""
    target = tmp_path_factory.mktemp("template")
    shutil.copy2(ROOT / "copier.yml", target / "copier.yml")
    shutil.copytree(
        ROOT / "template", target / "template", ignore=shutil.ignore_patterns("__pycache__")
    )
    return target


Render = Callable[..., Path]


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
