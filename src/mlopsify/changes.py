"""What an update did to a project's files: the result that ``update`` and ``add`` return."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class FileChange:
    """One path the update touched: ``added``, ``modified``, ``deleted`` or ``conflict``."""

    status: str
    path: str


@dataclass(frozen=True)
class UpdateResult:
    """What an update did (or, with ``pretend``, would do)."""

    project: Path
    from_version: str
    to_version: str
    changes: list[FileChange] = field(default_factory=list)
    pretend: bool = False
    # What replaces a conflicted file that the new release no longer has (machinery.py): path -> line.
    notes: dict[str, str] = field(default_factory=dict)
    # One line about an interrupted earlier update that this run rolled back first, if any.
    recovered: str | None = None

    @property
    def conflicts(self) -> list[str]:
        return [change.path for change in self.changes if change.status == "conflict"]
