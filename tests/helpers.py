"""Helpers the test modules share: where things are, running commands, requiring real tools."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

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


Render = Callable[..., Path]
# The working tree's questions: an answer equal to its default is the same variant.
_QUESTIONS = {
    name: spec
    for name, spec in yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8")).items()
    if not name.startswith("_") and isinstance(spec, dict)
}
_RUNNING_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def _defaults(name: str) -> dict[str, Any]:
    """The literal defaults of a project in directory ``name`` (as mlopsify derives them)."""
    found = {
        question: spec["default"]
        for question, spec in _QUESTIONS.items()
        if "default" in spec and "{" not in str(spec["default"])
    }
    found["project_name"] = name
    if _RUNNING_PYTHON in _QUESTIONS["python_version"]["choices"]:
        found["python_version"] = _RUNNING_PYTHON
    return found


class RenderedVariants:
    """Projects rendered from the working tree's template, each variant once per session.

    Every test module asks this one cache (the ``rendered`` fixture) instead of rendering its
    own copies; two modules that want the same answers share one project. The projects are
    for reading: a test that changes files renders its own with ``render``.
    """

    def __init__(self, template: Path, root: Path) -> None:
        self.template = template
        self.root = root
        self.home = root / "home"
        self.home.mkdir()
        (self.home / ".gitconfig").write_text(
            "[user]\n\tname = Test User\n\temail = test@example.com\n"
        )
        self._projects: dict[tuple[str, tuple[tuple[str, str], ...]], Path] = {}

    def __call__(
        self, answers: Mapping[str, Any] | None = None, *, name: str = "demo-project"
    ) -> Path:
        """The project rendered with ``answers`` (the rest default) in a directory ``name``."""
        defaults = _defaults(name)
        given = {k: v for k, v in (answers or {}).items() if defaults.get(k, object()) != v}
        key = (name, tuple(sorted((k, repr(v)) for k, v in given.items())))
        if key not in self._projects:
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("HOME", str(self.home))
                patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
                self._projects[key] = new_project(
                    self.root / f"variant-{len(self._projects)}" / name,
                    data=given,
                    defaults=True,
                    template=TemplateSource.at(self.template),
                )
        return self._projects[key]
