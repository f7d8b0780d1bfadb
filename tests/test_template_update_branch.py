"""The scheduled template job (`make template-update`: mlopsify_runtime.template_update_branch).

A project made from an older shipped release runs the job as CI would: the update on a
branch, `make test` (with one shared environment), a summary, the push and the review
request. The push goes to a local bare git repository standing in for the project's
remote; the GitLab and GitHub APIs are a local HTTP server on 127.0.0.1 standing in for the
provider (no provider can run here), which records each request and answers as the real
API does (201 with the request's web address).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT, require_tool
from provider_api import provider_api
from template_releases import (
    MLOPSIFY,
    Workspace,
    make_in_shared_env,
    next_release_bundle,
    release_versions,
)

pytestmark = pytest.mark.slow

RUNTIME_SRC = ROOT / "runtime" / "src"
TOKEN = "glpat-test-token-0123456789"


@pytest.fixture
def provider() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with provider_api() as api:
        yield api


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    require_tool("make")
    root = tmp_path_factory.mktemp("template-job")
    return Workspace(root, next_release_bundle(root / "release"))


def project_with_job(workspace: Workspace, name: str, ci_provider: str) -> tuple[Path, Path]:
    """A project at the oldest release, and a bare remote it was cloned from."""
    base = release_versions(workspace.bundle)[0]
    project = workspace.new_project_at(base, name, {"ci_provider": ci_provider})
    remote = workspace.root / f"{name}.git"
    workspace.run("git", "clone", "--quiet", "--bare", project, remote, cwd=workspace.root)
    if not (workspace.venv / "bin" / "python").exists():
        make_in_shared_env(workspace, project, workspace.venv, "setup")
    return project, remote


def run_job(workspace: Workspace, project: Path, **settings: str) -> Any:
    env = {
        "MLOPSIFY": str(MLOPSIFY),
        "VENV": str(workspace.venv),
        "PYTHONPATH": str(
            RUNTIME_SRC
        ),  # the job as `make template-update` runs it, from the runtime
        **settings,
    }
    return workspace.run(
        "python3",
        "-m",
        "mlopsify_runtime.template_update_branch",
        cwd=project,
        check=False,
        env=env,
    )


def remote_file(workspace: Workspace, remote: Path, branch: str, path: str) -> str:
    return workspace.run(
        "git", "--git-dir", remote, "show", f"{branch}:{path}", cwd=workspace.root
    ).stdout


def test_clean_update_is_pushed_and_a_merge_request_opened(
    workspace: Workspace, provider: Any
) -> None:
    api, received = provider
    project, remote = project_with_job(workspace, "shop-model", "gitlab")
    base, newest = release_versions(workspace.bundle)[0], release_versions(workspace.bundle)[-1]
    job = run_job(
        workspace,
        project,
        TEMPLATE_UPDATE_PUSH=str(remote),
        TEMPLATE_UPDATE_TOKEN=TOKEN,
        TEMPLATE_UPDATE_API_URL=f"{api}/api/v4",
        TEMPLATE_UPDATE_REPOSITORY="ml/shop-model",
    )
    assert job.returncode == 0, job.stdout + job.stderr
    branch = f"template-update/{newest}"
    assert f"_commit: {newest}" in remote_file(workspace, remote, branch, ".copier-answers.yml")
    summary = (project / "reports" / "template-update.md").read_text()
    assert summary.startswith(
        f"# Template update {base} -> {newest}\n\n- branch: `{branch}`\n- `make test`: passed\n"
    )
    assert "- conflicts: 0\n" in summary
    assert summary.endswith("Review request: http://127.0.0.1/ml/shop-model/-/merge_requests/1\n")
    assert TOKEN not in job.stdout + job.stderr

    [request] = received
    assert request["path"] == "/api/v4/projects/ml%2Fshop-model/merge_requests"
    assert request["headers"]["private-token"] == TOKEN
    body = request["body"]
    assert (body["source_branch"], body["target_branch"]) == (branch, "main")
    assert body["title"] == f"Template update {base} -> {newest}"
    assert summary.startswith(body["description"])


def test_conflicting_update_is_pushed_with_its_conflicts_and_a_pull_request(
    workspace: Workspace, provider: Any
) -> None:
    api, received = provider
    project, remote = project_with_job(workspace, "conflicted-model", "github")
    clashing_file, clashing_line = workspace.changed_template_line(
        project, release_versions(workspace.bundle)[0]
    )
    target = project / clashing_file
    target.write_text(target.read_text().replace(clashing_line, clashing_line + "  # team", 1))
    workspace.commit(project, "team edit")
    job = run_job(
        workspace,
        project,
        TEMPLATE_UPDATE_PUSH=str(remote),
        TEMPLATE_UPDATE_TOKEN=TOKEN,
        TEMPLATE_UPDATE_API_URL=api,
        TEMPLATE_UPDATE_REPOSITORY="ml/conflicted-model",
    )
    assert job.returncode == 1, job.stdout + job.stderr
    newest = release_versions(workspace.bundle)[-1]
    summary = (project / "reports" / "template-update.md").read_text()
    assert f"- conflicts: 1\n  - `{clashing_file}`: resolve the <<<<<<< markers\n" in summary
    assert summary.count(clashing_file) == 1
    pushed = remote_file(workspace, remote, f"template-update/{newest}", clashing_file)
    assert "<<<<<<< before updating" in pushed and clashing_line + "  # team" in pushed

    [request] = received
    assert request["path"] == "/repos/ml/conflicted-model/pulls"
    assert request["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert request["body"]["head"] == f"template-update/{newest}"
    assert request["body"]["base"] == "main"


def test_without_credentials_the_branch_stays_local(workspace: Workspace, provider: Any) -> None:
    _, received = provider
    project, remote = project_with_job(workspace, "local-model", "jenkins")
    job = run_job(workspace, project, TEMPLATE_UPDATE_TOKEN=TOKEN)
    assert job.returncode == 0, job.stdout + job.stderr
    newest = release_versions(workspace.bundle)[-1]
    assert (
        workspace.run("git", "branch", "--show-current", cwd=project).stdout.strip()
        == f"template-update/{newest}"
    )
    assert workspace.run(
        "git", "--git-dir", remote, "branch", "--list", cwd=workspace.root
    ).stdout.split() == [
        "*",
        "main",
    ]
    assert job.stdout.endswith(
        "The branch was not pushed: set TEMPLATE_UPDATE_PUSH (a remote or a URL with credentials).\n"
    )
    assert received == []
