"""``new``: render the template into a fresh git repository, atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _git
from .errors import DestinationError
from .rendering import Rendered, render_answers
from .template_source import TemplateSource


def current_umask() -> int:
    """The process's umask (reading it means setting it, so it is put back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_destination(destination: Path) -> None:
    for parent in destination.parents:
        if parent.exists() and not parent.is_dir():
            raise DestinationError(
                f"{parent} is a file, so {destination} cannot be created: give a directory path for the project"
            )
    if destination.is_file() or destination.is_symlink():
        raise DestinationError(
            f"{destination} is a file: give a new directory path for the project"
        )
    if destination.is_dir() and any(destination.iterdir()):
        raise DestinationError(
            f"{destination} is not empty: give a new directory, or use `mlopsify adopt` for an existing repository"
        )


def new_project(
    destination: Path,
    *,
    data: Mapping[str, Any] | None = None,
    defaults: bool = False,
    template: TemplateSource | None = None,
    vcs_ref: str | None = None,
) -> Path:
    """Create a project at ``destination`` and commit it; on any failure nothing is written.

    ``data`` answers questions by name; with ``defaults`` every other question takes its
    default, else Copier asks on the terminal. ``template`` is where the template comes from
    (default: the release history shipped with mlopsify), ``vcs_ref`` its release, in any
    spelling of the version (default: the newest final release).
    """
    return create_project(
        destination, data=data, defaults=defaults, template=template, vcs_ref=vcs_ref
    ).path


@dataclass(frozen=True)
class CreatedProject:
    """A project :func:`create_project` made: where, and what it rendered."""

    path: Path
    rendered: Rendered


def create_project(
    destination: Path,
    *,
    data: Mapping[str, Any] | None = None,
    defaults: bool = False,
    template: TemplateSource | None = None,
    vcs_ref: str | None = None,
) -> CreatedProject:
    """:func:`new_project`, also returning the release and the answers (the derived names)."""
    destination = destination.expanduser().absolute()
    check_destination(destination)
    template = template or TemplateSource.shipped()

    created_parents = [p for p in reversed(destination.parents) if not p.exists()]
    destination.parent.mkdir(parents=True, exist_ok=True)
    fill_existing = destination.is_dir()
    staging = Path(
        tempfile.mkdtemp(prefix=f".{destination.name}.mlopsify-", dir=destination.parent)
    )
    try:
        rendered = render_answers(
            template,
            staging,
            data or {},
            defaults=defaults,
            vcs_ref=vcs_ref,
            named_after=destination,
        )
        _git.init_repository(
            staging, f"Create project from the mlopsify template {rendered.version}"
        )
        if fill_existing:
            # `new .` (or any empty directory): the directory stays, so a shell in it stays in it.
            for entry in staging.iterdir():
                entry.rename(destination / entry.name)
            staging.rmdir()
        else:
            staging.chmod(0o777 & ~current_umask())  # mkdtemp made it private (0700)
            staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created_parents:
            shutil.rmtree(created_parents[0], ignore_errors=True)
        raise
    return CreatedProject(destination, rendered)
