"""The checks that make a command safe to start on a user's repository, before it writes."""

from __future__ import annotations

from pathlib import Path

from . import _git
from .errors import RepositoryStateError


def check_git_directory(path: Path, *, kind: str, hint: str) -> None:
    """Refuse ``path`` unless it is a directory in a git work tree; ``hint`` says what to do."""
    if not path.is_dir():
        raise RepositoryStateError(f"{path} is not a directory: give the path of a {kind}")
    if not _git.is_repository(path):
        raise RepositoryStateError(f"{path} is not a git repository: {hint}")


def check_clean(path: Path) -> None:
    """Refuse a work tree with uncommitted changes, untracked files included."""
    dirty = _git.dirty_paths(path)
    if dirty:
        raise RepositoryStateError(
            f"{path} has uncommitted changes ({shown_paths(dirty)}): commit or stash them first; "
            "nothing was written"
        )


def shown_paths(paths: list[str]) -> str:
    """The first five of ``paths`` and how many more, for a one-line message."""
    return ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
