"""``adopt``: bring an existing repository under the template without overwriting anything.

The template is rendered into a scratch directory with the answers given (as for ``new``).
Files the repository lacks are copied in; for each file it already has with other content,
the template's version is written beside it as ``NAME.mlopsify`` for review, except for
``.gitignore``, ``params.yaml`` and ``dvc.yaml``, which gain what the template needs
(adoption_merges.py). The answers file records the template's canonical URL and release so
that ``update`` and ``add`` work. Everything adopt writes is staged, not committed (proposals
included, so `git reset --hard` takes all of it back): the team reviews it as one change.
"""

from __future__ import annotations

import filecmp
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import _git
from .adoption_merges import (
    Merge,
    import_siblings_relatively,
    merge_dvc_pipeline,
    merge_gitignore,
    merge_params,
    own_dependency_files,
)
from .answers import ANSWERS_FILE
from .errors import RepositoryStateError
from .rendering import render_answers
from .repository import check_clean, check_git_directory
from .template_source import TemplateSource

PROPOSAL_SUFFIX = ".mlopsify"
# The repository's own file gains what the template needs instead of a proposal beside it.
MERGED: dict[str, Callable[[str, str], Merge]] = {
    ".gitignore": merge_gitignore,
    "params.yaml": merge_params,
    "dvc.yaml": merge_dvc_pipeline,
}


@dataclass(frozen=True)
class AdoptResult:
    """What adopt wrote: files added, and template versions proposed beside existing files."""

    project: Path
    version: str
    added: list[str] = field(default_factory=list)
    proposed: dict[str, str] = field(default_factory=dict)  # existing file -> file beside it
    identical: list[str] = field(default_factory=list)
    # New files written as proposals instead, with the reason (e.g. a workflow that would call
    # the repository's own deploy.yml as a reusable workflow, which it is not).
    held: dict[str, tuple[str, str]] = field(default_factory=dict)  # path -> (proposal, why)
    # The repository's own files that gained the template's lines, keys or stages -> what.
    merged: dict[str, list[str]] = field(default_factory=dict)
    # Template files changed to work in this repository -> why.
    adapted: dict[str, str] = field(default_factory=dict)
    # The repository's dependency files the template's environment (pyproject.toml) ignores.
    own_dependencies: list[str] = field(default_factory=list)
    lint_warning: str | None = None

    @property
    def staged(self) -> list[str]:
        """Every file adopt wrote: all of them are staged."""
        held = [beside for beside, _ in self.held.values()]
        return [*self.added, *self.proposed.values(), *held, *self.merged]


def check_adoptable(project: Path) -> None:
    check_git_directory(
        project,
        kind="repository",
        hint="run `git init` and commit it first, so the adoption is a change you can review",
    )
    top = _git.repository_top(project)
    if top is not None and top != project.resolve():
        raise RepositoryStateError(
            f"{project} is a subdirectory of the git repository {top}: CI files and"
            " .pre-commit-config.yaml are read only at the repository root; adopt the repository"
            " root, or make this directory a repository of its own; nothing was written"
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
        ).version
        result = AdoptResult(project, version)
        _adapt_to_tests_package(project, rendered, result)
        plan: list[tuple[Path, Path]] = []
        merges: dict[Path, str] = {}
        for source in sorted(p for p in rendered.rglob("*") if p.is_file() or p.is_symlink()):
            relative = source.relative_to(rendered).as_posix()
            target = project / relative
            if relative in MERGED and target.is_file() and not target.is_symlink():
                merge = MERGED[relative](_text(target), _text(source))
                if merge.added:
                    merges[target] = merge.text
                    result.merged[relative] = merge.added
                else:
                    result.identical.append(relative)
            elif not target.exists() and not target.is_symlink():
                plan.append((source, target))
                result.added.append(relative)
            elif target.is_file() and filecmp.cmp(source, target, shallow=False):
                result.identical.append(relative)
            else:
                beside = _free_proposal_name(project, relative)
                plan.append((source, project / beside))
                result.proposed[relative] = beside
        plan = _hold_calls_to_foreign_workflows(project, plan, result)
        _check_plan(project, [target for _, target in plan])
        for source, target in plan:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target, follow_symlinks=False)
        for target, text in merges.items():
            target.write_text(text, encoding="utf-8")
    if result.staged:
        # --force: the repository's own .gitignore may hide a template file; adopt means it.
        _git.git("add", "--force", "--", *result.staged, cwd=project)
    return replace(
        result,
        own_dependencies=own_dependency_files(project, set(result.added)),
        lint_warning=first_lint_job_verdict(project),
    )


def _adapt_to_tests_package(project: Path, rendered: Path, result: AdoptResult) -> None:
    """In a repository whose tests/ is a package, the template's tests import their siblings
    within it: pytest does not put a package's directory on sys.path."""
    if not (project / "tests" / "__init__.py").is_file():
        return
    for module in sorted((rendered / "tests").glob("*.py")):
        adapted = import_siblings_relatively(module.read_text(encoding="utf-8"))
        if adapted is not None:
            module.write_text(adapted, encoding="utf-8")
            result.adapted[module.relative_to(rendered).as_posix()] = (
                "your tests/ is a package (tests/__init__.py): it imports its sibling test modules"
                " relatively"
            )


def _free_proposal_name(project: Path, relative: str) -> str:
    """``NAME.mlopsify``, or ``NAME.2.mlopsify``... when the repository already has that file."""
    candidate, number = f"{relative}{PROPOSAL_SUFFIX}", 1
    while (project / candidate).exists() or (project / candidate).is_symlink():
        number += 1
        candidate = f"{relative}.{number}{PROPOSAL_SUFFIX}"
    return candidate


_REUSABLE_CALL = re.compile(r"^\s*uses:\s*\./(\.github/workflows/[^\s@]+)", re.MULTILINE)


def _hold_calls_to_foreign_workflows(
    project: Path, plan: list[tuple[Path, Path]], result: AdoptResult
) -> list[tuple[Path, Path]]:
    """Write a new workflow as a proposal when it calls one of the repository's own workflows
    (kept as it was) as a reusable workflow that has no ``workflow_call`` trigger: GitHub
    rejects such a file, and so would every push."""
    held_plan = []
    for source, target in plan:
        relative = target.relative_to(project).as_posix()
        called = [
            path
            for path in _REUSABLE_CALL.findall(_text(source))
            if path in result.proposed and "workflow_call" not in _text(project / path)
        ]
        if relative in result.added and called:
            beside = _free_proposal_name(project, relative)
            result.added.remove(relative)
            result.held[relative] = (
                beside,
                f"it calls {called[0]} as a reusable workflow, and yours has no workflow_call trigger",
            )
            target = project / beside
        held_plan.append((source, target))
    return held_plan


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def first_lint_job_verdict(project: Path) -> str | None:
    """What the generated CI's first job (`make lint`: ruff check, ruff format) says of the
    repository's own code, so adopt can warn before a push fails; None when it passes."""
    ruff = shutil.which("ruff")
    if ruff is None:
        return (
            "the repository's code was not checked against the CI lint job (ruff is not installed"
            " here): run `make setup lint` before the first push"
        )
    check = subprocess.run(
        [ruff, "check", "--no-cache", "--quiet", "--output-format", "concise", "."],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    fmt = subprocess.run(
        [ruff, "format", "--no-cache", "--check", "."],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    problems = [line.replace(" [*]", "") for line in check.stdout.splitlines() if line.strip()]
    summary = re.search(r"(\d+) files? would be reformatted", fmt.stdout + fmt.stderr)
    reformat = int(summary[1]) if summary else 0
    if not problems and not reformat:
        return None
    found = []
    if problems:
        plural = "s" if len(problems) != 1 else ""
        found.append(f"ruff check finds {len(problems)} problem{plural} ({problems[0]})")
    if reformat:
        plural = "s" if reformat != 1 else ""
        found.append(f"ruff format would reformat {reformat} file{plural}")
    return (
        f"the first CI lint job will fail on the repository's own code: {' and '.join(found)};"
        " run `make setup format`, review and commit"
    )


def _check_plan(project: Path, targets: list[Path]) -> None:
    """Refuse before writing anything when a file stands where the template needs a directory."""
    for target in targets:
        for parent in target.relative_to(project).parents:
            if (project / parent).is_file():
                raise RepositoryStateError(
                    f"{project / parent} is a file where the template has a directory: "
                    "rename it, then adopt again; nothing was written"
                )
