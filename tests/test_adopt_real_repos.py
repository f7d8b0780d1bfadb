"""adopt and assess on repositories shaped like real ones that no one here wrote.

Each fixture is a small committed repository with one trait public repositories have:
another default branch (`master`), a GitHub deploy workflow of its own (no
`workflow_call`), a file that already ends in `.mlopsify`, a service in a monorepo
subdirectory, Python code that the generated lint job rejects, and a `*.dockerfile`. They
run through the real CLI against the working tree's template (as the next release).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from template_releases import next_release, shipped_is_next_release  # noqa: F401 (fixtures)
from template_repos import git
from typer.testing import CliRunner

from mlopsify.cli import app

runner = CliRunner()

APP = (
    "import json\n\n\ndef predict(row: dict[str, float]) -> float:\n    return sum(row.values())\n"
)
TEST = "from app import predict\n\n\ndef test_predict() -> None:\n    assert predict({'a': 1.0}) == 1.0\n"
OWN_DEPLOY = (
    "name: deploy\n"
    "on:\n  push:\n    branches: [master]\n"
    "jobs:\n  deploy:\n    runs-on: ubuntu-latest\n    steps:\n      - run: ./deploy.sh\n"
)


pytestmark = pytest.mark.usefixtures("shipped_is_next_release")


def repository(root: Path, files: dict[str, str], branch: str = "main") -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git("init", "--quiet", f"--initial-branch={branch}", cwd=root)
    git("add", "--all", cwd=root)
    git("commit", "--quiet", "-m", "their code", cwd=root)
    return root


def adopt(path: Path, *data: str) -> object:
    args = ["adopt", str(path), "--defaults", *(arg for pair in data for arg in ("--data", pair))]
    return runner.invoke(app, args)


def lines(result: object) -> list[str]:
    return result.stdout.splitlines()  # type: ignore[attr-defined]


# ---------------------------------------------------------------- adopt


@pytest.mark.parametrize("provider", ["github", "jenkins", "gitlab"])
def test_ci_follows_the_repository_default_branch(tmp_path: Path, provider: str):
    repo = repository(tmp_path / "legacy-model", {"app.py": APP}, branch="master")
    result = adopt(repo, f"ci_provider={provider}")
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((repo / ".copier-answers.yml").read_text())["default_branch"] == "master"
    if provider == "github":
        ci = (repo / ".github" / "workflows" / "ci.yml").read_text()
        assert "    branches: [master]\n" in ci
        assert "github.ref == 'refs/heads/master'" in ci
        assert "main" not in ci.replace("maintenance", "")
    elif provider == "jenkins":
        jenkinsfile = (repo / "Jenkinsfile").read_text()
        assert "branch 'master'" in jenkinsfile and "branch 'main'" not in jenkinsfile
    else:
        assert "$CI_DEFAULT_BRANCH" in (repo / ".gitlab-ci.yml").read_text()


def test_an_explicit_default_branch_wins(tmp_path: Path):
    repo = repository(tmp_path / "legacy-model", {"app.py": APP}, branch="master")
    result = adopt(repo, "ci_provider=github", "default_branch=trunk")
    assert result.exit_code == 0, result.output
    assert "    branches: [trunk]\n" in (repo / ".github" / "workflows" / "ci.yml").read_text()


def test_own_deploy_workflow_is_never_called_as_reusable(tmp_path: Path):
    repo = repository(
        tmp_path / "shop", {"app.py": APP, ".github/workflows/deploy.yml": OWN_DEPLOY}, "master"
    )
    result = adopt(repo, "ci_provider=github", "use_kubernetes=true")
    assert result.exit_code == 0, result.output
    workflows = repo / ".github" / "workflows"
    assert (workflows / "deploy.yml").read_text() == OWN_DEPLOY
    # A ci.yml that `uses:` their deploy.yml would be rejected by GitHub: it is a proposal.
    assert not (workflows / "ci.yml").exists()
    assert "uses: ./.github/workflows/deploy.yml" in (workflows / "ci.yml.mlopsify").read_text()
    assert (
        "  proposed  .github/workflows/ci.yml.mlopsify  (it calls .github/workflows/deploy.yml as a"
        " reusable workflow, and yours has no workflow_call trigger)"
    ) in lines(result)


def test_an_existing_mlopsify_file_is_never_overwritten(tmp_path: Path):
    ours = "FROM python:3.12-slim\n"
    their_notes = "notes the team keeps next to the Dockerfile\n"
    repo = repository(
        tmp_path / "svc", {"app.py": APP, "Dockerfile": ours, "Dockerfile.mlopsify": their_notes}
    )
    result = adopt(repo)
    assert result.exit_code == 0, result.output
    assert (repo / "Dockerfile").read_text() == ours
    assert (repo / "Dockerfile.mlopsify").read_text() == their_notes
    assert "FROM" in (repo / "Dockerfile.2.mlopsify").read_text()
    assert "  kept      Dockerfile  (template version in Dockerfile.2.mlopsify)" in lines(result)


def test_a_monorepo_subdirectory_is_refused_with_one_line(tmp_path: Path):
    top = repository(
        tmp_path / "platform", {"services/model/app.py": APP, "README.md": "# platform\n"}
    )
    sub = top / "services" / "model"
    result = adopt(sub)
    assert result.exit_code == 5
    assert result.stderr == (
        f"error: {sub} is a subdirectory of the git repository {top}: CI files and"
        " .pre-commit-config.yaml are read only at the repository root; adopt the repository"
        " root, or make this directory a repository of its own; nothing was written\n"
    )
    assert git("status", "--porcelain", cwd=top) == ""


def test_adopt_says_when_the_first_lint_job_would_fail(tmp_path: Path):
    repo = repository(tmp_path / "untidy", {"app.py": APP + "x=1\n", "tests/test_app.py": TEST})
    result = adopt(repo)
    assert result.exit_code == 0, result.output
    out = lines(result)
    warning = [line for line in out if line.startswith("warning: the first CI lint job")]
    assert warning == [
        "warning: the first CI lint job will fail on the repository's own code: ruff check finds 1"
        " problem (app.py:1:8: F401 `json` imported but unused) and ruff format would reformat"
        " 2 files; run `make setup format`, review and commit"
    ], result.output


def test_tidy_code_gets_no_lint_warning(tmp_path: Path):
    tidy = "def predict(row: dict[str, float]) -> float:\n    return sum(row.values())\n"
    repo = repository(tmp_path / "tidy", {"app.py": tidy})
    result = adopt(repo)
    assert result.exit_code == 0, result.output
    assert not [line for line in lines(result) if line.startswith("warning:")]


# ---------------------------------------------------------------- assess


def commands_of(result: object, area: str) -> list[str]:
    report = json.loads(result.stdout)  # type: ignore[attr-defined]
    [found] = [a for a in report["areas"] if a["id"] == area]
    return list(found["commands"])


def test_assess_finds_dot_dockerfile(tmp_path: Path):
    repo = repository(
        tmp_path / "svc", {"app.py": APP, "docker/serve.dockerfile": "FROM python:3.12\nUSER app\n"}
    )
    result = runner.invoke(app, ["assess", str(repo), "--json"])
    assert result.exit_code == 0, result.output
    [containers] = [a for a in json.loads(result.stdout)["areas"] if a["id"] == "containers"]
    assert containers["level"] == 2
    assert {e["path"] for e in containers["evidence"]} == {"docker/serve.dockerfile"}


def test_assess_never_suggests_adopt_where_adopt_refuses(tmp_path: Path):
    top = repository(tmp_path / "platform", {"services/model/app.py": APP})
    plain = tmp_path / "not-a-repository"
    plain.mkdir()
    (plain / "app.py").write_text(APP)
    for path in (top / "services" / "model", plain):
        result = runner.invoke(app, ["assess", str(path), "--json"])
        assert result.exit_code == 0, result.output
        assert all(not c.startswith("mlopsify adopt") for c in commands_of(result, "containers")), (
            path
        )
    # The repository root can be adopted: there assess suggests it.
    result = runner.invoke(app, ["assess", str(top), "--json"])
    assert commands_of(result, "containers") == ["mlopsify adopt"]


def test_assess_does_not_recommend_a_regulation_to_a_project_that_has_none(tmp_path: Path):
    repo = repository(tmp_path / "svc", {"app.py": APP})
    assert adopt(repo, "compliance=none").exit_code == 0
    git("commit", "--quiet", "-m", "adopt", cwd=repo)
    result = runner.invoke(app, ["assess", str(repo), "--json"])
    assert result.exit_code == 0, result.output
    assert commands_of(result, "security_compliance") == []
