"""Small wrappers around the git command line, the only VCS mlopsify speaks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

# A fixed identity for commits that mlopsify makes on the user's behalf when git has none.
_FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "mlopsify",
    "GIT_AUTHOR_EMAIL": "mlopsify@localhost",
    "GIT_COMMITTER_NAME": "mlopsify",
    "GIT_COMMITTER_EMAIL": "mlopsify@localhost",
}


def git(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``git ARGS`` in ``cwd`` and return its stripped standard output."""
    completed = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        check=True,
        capture_output=True,
        text=True,
    )
    return completed.stdout.strip()


def has_identity(cwd: Path) -> bool:
    """Whether git knows who commits here (user.name and user.email)."""
    try:
        return bool(git("config", "user.name", cwd=cwd) and git("config", "user.email", cwd=cwd))
    except subprocess.CalledProcessError:
        return False


def commit_all(cwd: Path, message: str) -> None:
    """Stage every file and commit, with a fallback identity when git has none."""
    git("add", "--all", cwd=cwd)
    env = None if has_identity(cwd) else _FALLBACK_IDENTITY
    git("commit", "--quiet", "--no-verify", "-m", message, cwd=cwd, env=env)


def init_repository(cwd: Path, message: str) -> None:
    """Make ``cwd`` a git repository on branch main with everything in a first commit."""
    git("init", "--quiet", "--initial-branch=main", cwd=cwd)
    commit_all(cwd, message)


def is_repository(path: Path) -> bool:
    try:
        return git("rev-parse", "--is-inside-work-tree", cwd=path) == "true"
    except (subprocess.CalledProcessError, NotADirectoryError, FileNotFoundError):
        return False


def dirty_paths(cwd: Path) -> list[str]:
    """Paths with uncommitted changes, untracked files included."""
    return [path for _, path in status_entries(cwd, "--untracked-files=all")]


def status_entries(cwd: Path, *options: str) -> list[tuple[str, str]]:
    """``git status --porcelain -z`` as (two-letter code, path) pairs, renames by their new path."""
    raw = subprocess.run(
        ["git", "status", "--porcelain", "-z", *options],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    entries: list[tuple[str, str]] = []
    fields = iter(raw.split("\0"))
    for entry in fields:
        if not entry:
            continue
        code, path = entry[:2], entry[3:]
        if code[0] in "RC":
            next(fields, None)  # the source path of a rename or copy
        entries.append((code, path))
    return entries


def git_input(*args: str, cwd: Path, stdin: str) -> str:
    """Run ``git ARGS`` in ``cwd`` with ``stdin`` as its input."""
    completed = subprocess.run(
        ["git", *args], cwd=cwd, input=stdin, check=True, capture_output=True, text=True
    )
    return completed.stdout.strip()


def repository_top(path: Path) -> Path | None:
    """The top directory of the git repository holding ``path``; None outside one."""
    try:
        return Path(git("rev-parse", "--show-toplevel", cwd=path)).resolve()
    except (subprocess.CalledProcessError, NotADirectoryError, FileNotFoundError):
        return None


def default_branch(path: Path) -> str | None:
    """The repository's default branch: the remote's (origin/HEAD) when known, else the current one."""
    for ref in ("refs/remotes/origin/HEAD", "HEAD"):
        try:
            name = git("symbolic-ref", "--quiet", "--short", ref, cwd=path)
        except subprocess.CalledProcessError:
            continue
        return name.removeprefix("origin/") or None
    return None
