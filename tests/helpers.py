"""Helpers the test modules share: where things are, running commands, requiring real tools."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

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


@contextmanager
def isolated_home(root: Path) -> Iterator[Path]:
    """HOME at `root`/home with a git identity of its own and no system git config, for
    fixtures wider than a test (the autouse `isolated_git` fixture covers one test)."""
    home = root / "home"
    home.mkdir(exist_ok=True)
    (home / ".gitconfig").write_text("[user]\n\tname = Test User\n\temail = test@example.com\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
        yield home
