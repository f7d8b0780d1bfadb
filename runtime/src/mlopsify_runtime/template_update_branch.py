"""Update to the newest template release on a review branch, test it, push it, open a merge request.

    python3 -m mlopsify_runtime.template_update_branch [--summary reports/template-update.md]

Run by the scheduled CI job (`make template-update`), or by hand. In order:

1. from a clean tree, creates the branch ``template-update/<version>`` and runs
   ``mlopsify update`` there (conflicts are kept as ``<<<<<<<`` markers and committed, so the
   review shows them);
2. runs ``make setup test`` on the result (a release may change the dependencies);
3. writes a summary (versions, changed files, conflicts, test result) to ``--summary``;
4. pushes the branch when ``TEMPLATE_UPDATE_PUSH`` names where to (a remote such as
   ``origin``, or a URL with credentials); without it the branch stays local;
5. opens a merge request (GitLab) or pull request (GitHub, Azure DevOps) through the
   provider's API when ``TEMPLATE_UPDATE_TOKEN`` is set and the branch was pushed, with the
   summary as its text.

Settings (environment): ``TEMPLATE_UPDATE_PROVIDER`` (gitlab, github or azure; default: the
project's ci_provider), ``TEMPLATE_UPDATE_API_URL`` (default: ``CI_API_V4_URL``,
``GITHUB_API_URL``, Azure's ``SYSTEM_COLLECTIONURI`` with ``SYSTEM_TEAMPROJECT``, or the
public service), ``TEMPLATE_UPDATE_REPOSITORY`` (GitLab project id or path, GitHub
owner/name, Azure DevOps repository name or id; default: ``CI_PROJECT_ID``,
``GITHUB_REPOSITORY`` or ``BUILD_REPOSITORY_NAME``),
``TEMPLATE_UPDATE_TARGET`` (the branch to merge into; default: the branch checked out),
``MLOPSIFY`` (the command; default ``mlopsify``).

Exit codes: 0 up to date, or updated with the tests passing; 1 the update conflicts or the
tests fail (the branch and the request are made all the same, for review); 2 the job could
not run (dirty tree, mlopsify missing, push or API refused).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ANSWERS_FILE = Path(".copier-answers.yml")
PUBLIC_API = {"gitlab": "https://gitlab.com/api/v4", "github": "https://api.github.com"}
PROVIDERS = ("gitlab", "github", "azure")
# Azure DevOps refuses a pull request description longer than this.
AZURE_DESCRIPTION_LIMIT = 4000
BOT_IDENTITY = ("-c", "user.name=template-update", "-c", "user.email=template-update@localhost")
STATUS_LINE = re.compile(r"^  (?P<status>conflict|modified|added|deleted)\s+(?P<path>\S.*)$")


class JobError(Exception):
    """The job could not run (exit code 2)."""


@dataclass
class Outcome:
    """What the job did: the summary is made from it."""

    from_version: str
    to_version: str = ""
    branch: str = ""
    changes: list[tuple[str, str]] = field(default_factory=list)
    tests_passed: bool | None = None
    pushed_to: str = ""
    request_url: str = ""
    test_command: str = "make test"  # as the summary names it

    @property
    def conflicts(self) -> list[str]:
        return [path for status, path in self.changes if status == "conflict"]

    @property
    def title(self) -> str:
        """The title of the merge or pull request."""
        return f"Template update {self.from_version} -> {self.to_version}"

    @property
    def commit_message(self) -> str:
        conflicts = f" ({len(self.conflicts)} conflicts to resolve)" if self.conflicts else ""
        return f"{self.title}{conflicts}"


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if check and completed.returncode != 0:
        raise JobError(f"{shlex.join(args)} failed ({completed.returncode}): {completed.stderr.strip()}")
    return completed


def template_version() -> str:
    """The release the project is on (``_commit`` in Copier's answers file)."""
    match = re.search(r"^_commit:\s*['\"]?(?P<version>[^'\"\s]+)", ANSWERS_FILE.read_text(), re.MULTILINE)
    if match is None:
        raise JobError(f"{ANSWERS_FILE} has no _commit: is this a project made from the template?")
    return match["version"]


def answer(name: str) -> str:
    match = re.search(rf"^{name}:\s*['\"]?(?P<value>[^'\"\s]*)", ANSWERS_FILE.read_text(), re.MULTILINE)
    return match["value"] if match else ""


def update_on_branch(outcome: Outcome) -> None:
    """Run the update, then move its result onto a branch named after the new release."""
    if run("git", "status", "--porcelain").stdout.strip():
        raise JobError("the working tree has uncommitted changes: the update must start from a commit")
    command = [*shlex.split(os.environ.get("MLOPSIFY", "mlopsify")), "update", "--conflict", "inline"]
    try:
        updated = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise JobError(f"{command[0]} not found: install it (pip install mlopsify) or set MLOPSIFY") from None
    if updated.returncode not in (0, 7):
        raise JobError(f"mlopsify update failed ({updated.returncode}): {updated.stderr.strip()}")
    outcome.to_version = template_version()
    outcome.changes = [
        (match["status"], match["path"]) for match in map(STATUS_LINE.match, updated.stdout.splitlines()) if match
    ]
    if outcome.to_version == outcome.from_version:
        return
    outcome.branch = f"template-update/{outcome.to_version}"
    run("git", "add", "--all")  # conflicted files are committed with their markers, for review
    run("git", "checkout", "--quiet", "-B", outcome.branch)
    # A CI runner often has no git identity: commit as the job then.
    identity = [] if run("git", "config", "user.email", check=False).stdout.strip() else list(BOT_IDENTITY)
    run("git", *identity, "commit", "--quiet", "--no-verify", "-m", outcome.commit_message)


def run_tests(outcome: Outcome) -> None:
    # The release may add or move dependencies: the environment follows it before the tests.
    tests = subprocess.run(["make", "setup", "test"], capture_output=True, text=True, check=False)
    sys.stdout.write(tests.stdout[-4000:])
    outcome.tests_passed = tests.returncode == 0


def push(outcome: Outcome, target: str) -> None:
    if not target:
        return
    run("git", "push", "--force", target, f"HEAD:refs/heads/{outcome.branch}")
    # Never print a URL's credentials.
    outcome.pushed_to = re.sub(r"//[^@/]+@", "//", target)


@dataclass(frozen=True)
class ReviewTarget:
    """Where review requests open: a GitLab project (id or path), a GitHub repository
    (owner/name) or a repository (name or id) of the Azure DevOps project whose URL is ``api``."""

    provider: str  # gitlab, github or azure
    api: str  # GitLab's API root (.../api/v4), GitHub's, or the Azure DevOps project's URL
    repository: str
    token: str


@dataclass(frozen=True)
class ReviewRequest:
    """One provider's call that opens a review request, and where its answer keeps the link."""

    url: str
    headers: dict[str, str]
    body: dict[str, str]
    link: str


def gitlab_request(target: ReviewTarget, branch: str, base: str, title: str, body: str) -> ReviewRequest:
    return ReviewRequest(
        f"{target.api}/projects/{urllib.parse.quote(target.repository, safe='')}/merge_requests",
        {"PRIVATE-TOKEN": target.token},
        {"source_branch": branch, "target_branch": base, "title": title, "description": body},
        "web_url",
    )


def github_request(target: ReviewTarget, branch: str, base: str, title: str, body: str) -> ReviewRequest:
    return ReviewRequest(
        f"{target.api}/repos/{target.repository}/pulls",
        {"Authorization": f"Bearer {target.token}", "Accept": "application/vnd.github+json"},
        {"head": branch, "base": base, "title": title, "body": body},
        "html_url",
    )


def azure_request(target: ReviewTarget, branch: str, base: str, title: str, body: str) -> ReviewRequest:
    """Azure DevOps Git: POST .../_apis/git/repositories/{repository}/pullrequests (api 7.1),
    with a bearer token (a job's ``System.AccessToken``)."""
    description = body if len(body) <= AZURE_DESCRIPTION_LIMIT else body[: AZURE_DESCRIPTION_LIMIT - 2] + "…\n"
    repository = urllib.parse.quote(target.repository, safe="")
    return ReviewRequest(
        f"{target.api.rstrip('/')}/_apis/git/repositories/{repository}/pullrequests?api-version=7.1",
        {"Authorization": f"Bearer {target.token}"},
        {
            "sourceRefName": f"refs/heads/{branch}",
            "targetRefName": f"refs/heads/{base}",
            "title": title,
            "description": description,
        },
        "pullRequestId",
    )


REQUESTS = {"gitlab": gitlab_request, "github": github_request, "azure": azure_request}
# Where a CI job of each provider finds its API and its own repository.
JOB_API = {"gitlab": "CI_API_V4_URL", "github": "GITHUB_API_URL"}
JOB_REPOSITORY = {"gitlab": "CI_PROJECT_ID", "github": "GITHUB_REPOSITORY", "azure": "BUILD_REPOSITORY_NAME"}


def _setting(*names: str, default: str = "") -> str:
    """The first of the environment variables ``names`` that is set."""
    return next((os.environ[name] for name in names if os.environ.get(name)), default)


def job_target(provider: str, token: str) -> ReviewTarget:
    """The repository the CI job runs for (or the one TEMPLATE_UPDATE_API_URL and
    TEMPLATE_UPDATE_REPOSITORY name)."""
    api = _setting("TEMPLATE_UPDATE_API_URL", JOB_API.get(provider, ""), default=PUBLIC_API.get(provider, ""))
    if not api:  # Azure DevOps: the collection's URL and the project's name
        collection, project = _setting("SYSTEM_COLLECTIONURI"), _setting("SYSTEM_TEAMPROJECT")
        if not (collection and project):
            raise JobError("TEMPLATE_UPDATE_API_URL is not set: give the Azure DevOps project's URL")
        api = f"{collection.rstrip('/')}/{urllib.parse.quote(project)}"
    return ReviewTarget(provider, api, _setting("TEMPLATE_UPDATE_REPOSITORY", JOB_REPOSITORY[provider]), token)


def open_request(outcome: Outcome, summary: str, token: str, base_branch: str) -> None:
    """Open a merge request (GitLab) or pull request (GitHub, Azure DevOps) for the pushed branch."""
    provider = os.environ.get("TEMPLATE_UPDATE_PROVIDER") or answer("ci_provider")
    if provider not in REQUESTS:
        raise JobError(
            f"TEMPLATE_UPDATE_PROVIDER must be {', '.join(PROVIDERS[:-1])} or {PROVIDERS[-1]} to open a request,"
            f" not {provider!r}"
        )
    outcome.request_url = open_review_request(
        job_target(provider, token), branch=outcome.branch, base=base_branch, title=outcome.title, body=summary
    )


def open_review_request(target: ReviewTarget, *, branch: str, base: str, title: str, body: str) -> str:
    """Open a review request of ``branch`` into ``base``; its web page.

    Shared with ``mlopsify fleet update``, which opens one for each repository of a fleet.
    """
    if not target.repository:
        raise JobError("TEMPLATE_UPDATE_REPOSITORY is not set: name the project to open the request in")
    call = REQUESTS[target.provider](target, branch, base, title, body)
    request = urllib.request.Request(
        call.url,
        data=json.dumps(call.body).encode(),
        headers={**call.headers, "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            answered = json.loads(response.read() or b"{}")
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise JobError(f"opening the {target.provider} request at {call.url} failed: {error}") from None
    return _request_link(answered, call)


def _request_link(answered: dict[str, object], call: ReviewRequest) -> str:
    """The request's web page; Azure DevOps answers with its id and the repository's page."""
    if call.link != "pullRequestId":
        return str(answered.get(call.link) or call.url)
    repository = answered.get("repository")
    web = repository.get("webUrl") if isinstance(repository, dict) else None
    number = answered.get("pullRequestId")
    return f"{web}/pullrequest/{number}" if web and number else call.url.split("?", 1)[0]


def summary_text(outcome: Outcome) -> str:
    if not outcome.branch:
        return f"Template is up to date: the project is on {outcome.from_version}.\n"
    verdict = {True: "passed", False: "FAILED", None: "not run"}[outcome.tests_passed]
    lines = [
        f"# Template update {outcome.from_version} -> {outcome.to_version}",
        "",
        f"- branch: `{outcome.branch}`",
        f"- `{outcome.test_command}`: {verdict}",
        f"- conflicts: {len(outcome.conflicts)}",
        *(f"  - `{path}`: resolve the <<<<<<< markers" for path in outcome.conflicts),
        f"- changed files: {len(outcome.changes)}",
        *(f"  - {status} `{path}`" for status, path in outcome.changes if status != "conflict"),
        "",
        "Review with `git diff` against the target branch; every edit of the team is kept (docs: mlopsify update).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", type=Path, default=Path("reports/template-update.md"))
    args = parser.parse_args(argv)
    try:
        outcome = Outcome(from_version=template_version())
        base_branch = os.environ.get("TEMPLATE_UPDATE_TARGET") or run("git", "branch", "--show-current").stdout.strip()
        update_on_branch(outcome)
        if outcome.branch:
            run_tests(outcome)
            push(outcome, os.environ.get("TEMPLATE_UPDATE_PUSH", ""))
        summary = summary_text(outcome)
        token = os.environ.get("TEMPLATE_UPDATE_TOKEN", "")
        if outcome.pushed_to and token:
            open_request(outcome, summary, token, base_branch)
    except JobError as error:
        print(f"template-update: {error}", file=sys.stderr)
        return 2
    if outcome.branch and not outcome.pushed_to:
        summary += "\nThe branch was not pushed: set TEMPLATE_UPDATE_PUSH (a remote or a URL with credentials).\n"
    if outcome.request_url:
        summary += f"\nReview request: {outcome.request_url}\n"
    args.summary.parent.mkdir(parents=True, exist_ok=True)
    args.summary.write_text(summary)
    print(summary, end="")
    return 1 if outcome.conflicts or outcome.tests_passed is False else 0


if __name__ == "__main__":
    sys.exit(main())
