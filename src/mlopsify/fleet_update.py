"""``fleet update``: for each repository behind, the update on a review branch, tested, pushed,
and a merge or pull request opened.

Each repository is worked on in a scratch clone of its default branch (never in a work tree
a team uses): ``update`` to the newest release on ``template-update/<release>`` (conflicts
committed with their markers, for review), the fleet file's test command, a push of that
branch, and a request through the provider's API with the conflicts and the test result in
its text. The branch, the commit, the text and the request are those of the scheduled
template job of every project (``mlopsify_runtime.template_update_branch``), whose code this
module calls. A repository whose remote already has the branch for that release is skipped.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _git
from .errors import MlopsifyError, RepositoryStateError
from .fleet import TOKEN_ENV, FleetRepository

if TYPE_CHECKING:
    from mlopsify_runtime.template_update_branch import Outcome, ReviewTarget

# A test command that runs longer than this counts as failed.
TEST_TIMEOUT = 3600


@dataclass
class RepositoryUpdate:
    """What ``fleet update`` did for one repository."""

    name: str
    # opened (a request), pushed (no token to open one), skipped (the branch is there),
    # current (nothing to update) or failed (``message`` says why)
    state: str
    from_version: str | None = None
    to_version: str | None = None
    branch: str | None = None
    conflicts: list[str] = field(default_factory=list)
    tests_passed: bool | None = None
    request_url: str | None = None
    message: str | None = None


def update_repository(repository: FleetRepository) -> RepositoryUpdate:
    """Update one repository on a review branch; a repository that fails says why."""
    from .fleet_status import fleet_clone, git_failure

    try:
        with fleet_clone(repository) as clone:
            return _update_clone(repository, clone)
    except MlopsifyError as error:
        return RepositoryUpdate(repository.name, "failed", message=str(error))
    except subprocess.CalledProcessError as error:  # a push refused, a remote gone
        return RepositoryUpdate(repository.name, "failed", message=git_failure(error))


def _update_clone(repository: FleetRepository, clone: Path) -> RepositoryUpdate:
    from mlopsify_runtime.template_update_branch import (
        JobError,
        Outcome,
        open_review_request,
        summary_text,
    )

    from .answers import read_project_answers
    from .fleet_status import releases_behind
    from .template import template_for
    from .updating import source_for

    answers = read_project_answers(clone)
    current = str(answers["_commit"])
    template = template_for(source_for(answers, None))
    newest = template.newest()
    if not releases_behind(template.versions, current):
        return RepositoryUpdate(repository.name, "current", current, current)
    outcome = Outcome(from_version=current, to_version=newest, test_command=repository.test)
    outcome.branch = f"template-update/{newest}"
    done = RepositoryUpdate(repository.name, "skipped", current, newest, outcome.branch)
    remote = push_url(repository)
    if _git.git("ls-remote", "--heads", remote, f"refs/heads/{outcome.branch}", cwd=clone):
        done.message = f"{outcome.branch} is already on the remote"
        return done
    token = os.environ.get(TOKEN_ENV, "")
    target = review_target(repository, answers, token) if token else None
    _update_on_branch(clone, outcome)
    outcome.tests_passed = _run_tests(clone, repository.test)
    done.conflicts, done.tests_passed = outcome.conflicts, outcome.tests_passed
    _git.git("push", "--quiet", remote, f"HEAD:refs/heads/{outcome.branch}", cwd=clone)
    if target is None:
        done.state, done.message = "pushed", f"no request opened: set {TOKEN_ENV}"
        return done
    try:
        done.request_url = open_review_request(
            target,
            branch=outcome.branch,
            base=repository.branch,
            title=outcome.title,
            body=summary_text(outcome),
        )
    except JobError as error:
        done.state, done.message = "failed", f"pushed {outcome.branch}, but {error}"
        return done
    done.state = "opened"
    return done


def push_url(repository: FleetRepository) -> str:
    """Where the branch goes: the repository itself, or for a local work tree its origin (the
    team's clone is never written, not even a branch)."""
    path = Path(repository.url)
    if not repository.is_local or not (path / ".git").exists():
        return repository.url
    try:
        return _git.git("config", "--get", "remote.origin.url", cwd=path)
    except subprocess.CalledProcessError:
        raise RepositoryStateError(
            f"{repository.url} is a work tree without an origin remote: list the remote it"
            " pushes to in the fleet file instead"
        ) from None


def _update_on_branch(clone: Path, outcome: Outcome) -> None:
    """Update the clone on the review branch and commit, conflict markers and all."""
    from .errors import UpdateConflictError
    from .updating import update_project

    _git.git("checkout", "--quiet", "-b", outcome.branch, cwd=clone)
    try:
        result = update_project(clone, to=outcome.to_version, conflict="inline")
    except UpdateConflictError as error:
        if error.result is None:
            raise
        result = error.result
    outcome.changes = [(change.status, change.path) for change in result.changes]
    _git.commit_all(clone, outcome.commit_message)


def _run_tests(clone: Path, command: str) -> bool:
    try:
        tested = subprocess.run(
            command, shell=True, cwd=clone, capture_output=True, timeout=TEST_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        return False
    return tested.returncode == 0


def review_target(repository: FleetRepository, answers: dict[str, Any], token: str) -> ReviewTarget:
    """Where the repository's request opens: the fleet file's provider, else its CI's."""
    from mlopsify_runtime.template_update_branch import PUBLIC_API, REQUESTS, ReviewTarget

    provider = repository.provider or str(answers.get("ci_provider"))
    api = repository.api or PUBLIC_API.get(provider, "")
    if provider not in REQUESTS or not api:
        raise RepositoryStateError(
            f"{repository.name} is a {provider} project: name its git host in the fleet file"
            " (provider: gitlab or github, api, project); nothing was pushed"
        )
    return ReviewTarget(
        provider=provider,
        api=api,
        repository=repository.project or repository.name,
        token=token,
    )


def _conflicts(count: int) -> str:
    return f"{count} conflict{'s' if count != 1 else ''}"


def update_table(updates: list[RepositoryUpdate]) -> list[str]:
    """One line a repository, then the counts."""
    width = max([10, *(len(update.name) for update in updates)])
    lines = []
    for update in updates:
        if update.state == "current":
            detail = f"at {update.from_version}: nothing to update"
        elif update.state == "failed":
            detail = update.message or ""
        else:
            tests = {True: "tests passed", False: "tests FAILED", None: ""}[update.tests_passed]
            parts = [
                f"{update.from_version} -> {update.to_version} on {update.branch}",
                _conflicts(len(update.conflicts)) if update.state != "skipped" else "",
                tests,
                update.request_url or update.message or "",
            ]
            detail = ", ".join(part for part in parts if part)
        lines.append(f"{update.name:<{width}} {update.state:<8} {detail}")
    counts = {
        state: sum(update.state == state for update in updates)
        for state in ("opened", "pushed", "skipped", "current", "failed")
    }
    lines.append(", ".join(f"{count} {state}" for state, count in counts.items() if count))
    return lines
