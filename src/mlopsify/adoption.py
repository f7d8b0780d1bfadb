"""``adopt``: bring an existing repository under the template without overwriting anything.

The template is rendered into a scratch directory with the answers given (as for ``new``).
Files the repository lacks are copied in; for each file it already has with other content,
the template's version is written beside it as ``NAME.mlopsify`` for review; the answers
file records the template's canonical URL and release so that ``update`` and ``add`` work.
Everything adopt writes is staged, not committed: the team reviews it as one change.
"""

from __future__ import annotations

import filecmp
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _git
from .answers import ANSWERS_FILE
from .errors import RepositoryStateError
from .rendering import render_answers
from .repository import check_clean, check_git_directory
from .template_source import TemplateSource

PROPOSAL_SUFFIX = ".mlopsify"


@dataclass(frozen=True)
class AdoptResult:
    """What adopt wrote: files added, and template versions proposed beside existing files."""

    project: Path
    version: str
    added: list[str] = field(default_factory=list)
    proposed: dict[str, str] = field(default_factory=dict)  # existing file -> file beside it
    identical: list[str] = field(default_factory=list)


def check_adoptable(project: Path) -> None:
    check_git_directory(
        project,
        kind="repository",
        hint="run `git init` and commit it first, so the adoption is a change you can review",
    )
    if (project / ANSWERS_FILE).exists():
        raise RepositoryStateError(
            f"{project} already has {ANSWERS_FILE}: it is under the template; use `mlopsify update`"
        )
    check_clean(project)


def adopt_repository(
    project: Path,
    *,
    data: Mapping[str, Any] | None = None,
    defaults: bool = False,
    template: TemplateSource | None = None,
    vcs_ref: str | None = None,
) -> AdoptResult:
    """Add the template's files that ``project`` lacks, propose the rest beside, stage it all.

    ``data`` answers questions by name, as for :func:`~mlopsify.new_project`.
    """
    project = project.expanduser().absolute()
    check_adoptable(project)
    template = template or TemplateSource.shipped()
    with tempfile.TemporaryDirectory(prefix="mlopsify-adopt-") as scratch:
        rendered = Path(scratch) / project.name
        version = render_answers(
            template, rendered, data or {}, defaults=defaults, vcs_ref=vcs_ref, named_after=project
        )
        result = AdoptResult(project, version)
        plan: list[tuple[Path, Path]] = []
        for source in sorted(p for p in rendered.rglob("*") if p.is_file() or p.is_symlink()):
            relative = source.relative_to(rendered).as_posix()
            target = project / relative
            if not target.exists() and not target.is_symlink():
                plan.append((source, target))
                result.added.append(relative)
            elif target.is_file() and filecmp.cmp(source, target, shallow=False):
                result.identical.append(relative)
            else:
                beside = f"{relative}{PROPOSAL_SUFFIX}"
                plan.append((source, project / beside))
                result.proposed[relative] = beside
        _check_plan(project, [target for _, target in plan])
        for source, target in plan:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)
    written = [*result.added, *result.proposed.values()]
    if written:
        # --force: the repository's own .gitignore may hide a template file; adopt means it.
        _git.git("add", "--force", "--", *written, cwd=project)
    return result


def _check_plan(project: Path, targets: list[Path]) -> None:
    """Refuse before writing anything when a file stands where the template needs a directory."""
    for target in targets:
        for parent in target.relative_to(project).parents:
            if (project / parent).is_file():
                raise RepositoryStateError(
                    f"{project / parent} is a file where the template has a directory: "
                    "rename it, then adopt again; nothing was written"
                )
