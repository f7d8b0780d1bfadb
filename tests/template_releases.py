"""The template's release history as a user meets it, and generated projects built from it.

``next_release_bundle`` is the shipped bundle plus this checkout's template as the next
release (``<newest>.post1``) when template/ differs from the newest shipped release; once the
release is cut, it is the shipped bundle itself. Projects are made and changed through the
real ``mlopsify`` command, with ``MLOPSIFY_TEMPLATE_BUNDLE`` naming that history, so tests take
the path a user takes: ``new``, ``add`` and ``update`` between real releases.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import REAL_CACHES, ROOT, run

from mlopsify import TemplateSource, new_project
from mlopsify.template_source import CANONICAL_URL

sys.path.insert(0, str(ROOT / "scripts"))
import release_template  # scripts/ is not a package: found through sys.path

SHIPPED_BUNDLE = release_template.BUNDLE_PATH
MLOPSIFY = Path(sys.executable).parent / "mlopsify"
GITCONFIG = (
    "[user]\n\tname = Test User\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n"
)


def next_release_bundle(work: Path) -> Path:
    """The shipped release history, plus this checkout's template as a newer release if it differs."""
    repo = release_template.checkout_history(work)
    if not release_template.differs_from_newest(repo):
        return SHIPPED_BUNDLE
    newest = release_versions(SHIPPED_BUNDLE)[-1]
    release_template.git("commit", "--quiet", "-m", "working tree", cwd=repo)
    release_template.git("tag", f"{newest}.post1", cwd=repo)
    bundle = work / "template.bundle"
    release_template.git("bundle", "create", "--quiet", str(bundle), "--all", cwd=repo)
    return bundle


def release_versions(bundle: Path) -> list[str]:
    """Release tags of a bundle, oldest first (the order updates use)."""
    return TemplateSource(url=CANONICAL_URL, bundle=bundle).versions()


@dataclass
class Workspace:
    """A home of its own (git identity, real caches) and the template history every command uses."""

    root: Path
    bundle: Path

    def __post_init__(self) -> None:
        home = self.root / "home"
        home.mkdir(parents=True, exist_ok=True)
        (home / ".gitconfig").write_text(GITCONFIG)
        self.home = home

    @property
    def venv(self) -> Path:
        """Where a module's generated projects share one environment (make setup VENV=...)."""
        return self.root / "env"

    @property
    def env(self) -> dict[str, str]:
        """What every command here runs with, over the test process's environment."""
        return {
            **REAL_CACHES,
            "HOME": str(self.home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "MLOPSIFY_TEMPLATE_BUNDLE": str(self.bundle),
        }

    def run(
        self,
        *args: str | Path,
        cwd: Path,
        check: bool = True,
        timeout: float = 1200,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command; on an unexpected failure the test fails with both streams."""
        return run(*args, cwd=cwd, env={**self.env, **(env or {})}, check=check, timeout=timeout)

    def mlopsify(
        self, *args: str | Path, cwd: Path, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.run(MLOPSIFY, *args, cwd=cwd, check=check)

    def new_project_at(self, release: str, name: str, answers: dict[str, Any]) -> Path:
        """A project made from ``release`` of the history, committed, in ``root/release/name``."""
        template = TemplateSource(url=CANONICAL_URL, bundle=self.bundle)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("HOME", str(self.home))
            patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
            return new_project(
                self.root / release / name,
                data=answers,
                defaults=True,
                template=template,
                vcs_ref=release,
            )

    def changed_template_line(self, project: Path, release: str) -> tuple[str, str]:
        """A file of ``project`` and one of its lines that the newest release changes (editing it conflicts)."""
        newest = self.root / f"newest-of-{project.name}-{release}"
        if not newest.exists():
            self.run("git", "clone", "--quiet", project, newest, cwd=self.root)
            self.mlopsify("update", cwd=newest)
        tracked = self.run("git", "ls-files", cwd=project).stdout.splitlines()
        for path in sorted(set(tracked) - {".copier-answers.yml"}):
            if not (newest / path).is_file() or path.endswith(".whl"):
                continue  # removed by the newest release, or the runtime's wheel (not text)
            new_lines = set((newest / path).read_text().splitlines())
            for line in (project / path).read_text().splitlines():
                if line.strip() and line not in new_lines:
                    return path, line
        pytest.fail(f"the newest release changes no line of the files of {release}")

    def commit(self, project: Path, message: str) -> None:
        # --no-verify: these projects share an environment outside .venv, where the pre-commit
        # hooks `make setup` installs look for their tools; the tests lint with make lint.
        self.run("git", "add", "--all", cwd=project)
        self.run(
            "git", "commit", "--quiet", "--no-verify", "--allow-empty", "-m", message, cwd=project
        )


def make_in_shared_env(
    workspace: Workspace, project: Path, venv: Path, *targets: str
) -> subprocess.CompletedProcess[str]:
    """``make TARGETS`` with one environment shared by several projects of the same package.

    The environment holds the dependencies; ``PYTHONPATH=src`` puts this project's own code
    before the editable install of whichever project ran ``make setup`` first.
    """
    return workspace.run(
        "make", *targets, f"VENV={venv}", cwd=project, timeout=1800, env={"PYTHONPATH": "src"}
    )


@pytest.fixture(scope="module")
def next_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The next-release bundle, made once per module."""
    return next_release_bundle(tmp_path_factory.mktemp("next-release"))


@pytest.fixture
def shipped_is_next_release(next_release: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``mlopsify`` in this test reads the next-release history as the shipped one."""
    monkeypatch.setenv("MLOPSIFY_TEMPLATE_BUNDLE", str(next_release))
    return next_release
