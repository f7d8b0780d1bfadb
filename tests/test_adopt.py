"""`mlopsify adopt`: an existing repository gains what it lacks and loses nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers import ROOT, require_tool
from template_repos import TemplateRepo, git, mlops_files
from typer.testing import CliRunner

from mlopsify import RepositoryStateError, TemplateSource
from mlopsify.adoption import adopt_repository
from mlopsify.assessment import assess_repository
from mlopsify.cli import app
from mlopsify.template_source import CANONICAL_URL
from mlopsify.updating import update_project

runner = CliRunner()

EXISTING = {
    "README.md": "# Shop API\n\nOur service.\n",
    "Dockerfile": 'FROM python:3.11-slim\nCOPY . /app\nCMD ["python", "/app/app.py"]\n',
    ".gitlab-ci.yml": "test:\n  script: pytest\n",
    ".gitignore": "/.venv/\n/mlflow.db\n",  # the same as the template's
    "app.py": "print('hello')\n",
    "tests/test_app.py": "def test_app() -> None:\n    assert True\n",
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> TemplateRepo:
    repo = TemplateRepo(tmp_path_factory.mktemp("templates") / "mlops")
    repo.release("v1", mlops_files((ROOT / "copier.yml").read_text()))
    return repo


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A DevOps repository with its own Dockerfile and CI file, committed."""
    root = tmp_path / "shop-api"
    for name, text in EXISTING.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git("init", "--quiet", "--initial-branch=main", cwd=root)
    git("add", "--all", cwd=root)
    git("commit", "--quiet", "-m", "our service", cwd=root)
    return root


def assert_kept(repository: Path) -> None:
    """The repository's files are as they were; its .gitignore only gained lines at the end."""
    for name, text in EXISTING.items():
        if name == ".gitignore":
            assert (repository / name).read_text().startswith(text), name
        else:
            assert (repository / name).read_text() == text, name


def adopt(repository: Path, template: TemplateRepo, **answers: object):
    return adopt_repository(
        repository, data=answers, defaults=True, template=TemplateSource.at(template.path)
    )


def test_adopt_overwrites_nothing_and_proposes_the_template_version_beside(
    repository: Path, template: TemplateRepo
):
    result = adopt(repository, template)
    assert_kept(repository)
    assert result.proposed == {
        ".gitlab-ci.yml": ".gitlab-ci.yml.mlopsify",
        "Dockerfile": "Dockerfile.mlopsify",
        "README.md": "README.md.mlopsify",
    }
    assert (repository / "Dockerfile.mlopsify").read_text() == "FROM python:3.11-slim\nUSER app\n"
    assert result.identical == [".gitignore"]
    assert "dvc.yaml" in result.added
    assert "src/shop_api/train.py" in result.added  # package name derived from the directory
    assert (repository / "params.yaml").read_text() == "gate:\n  min_accuracy: 0.9\n"


def test_adopt_writes_answers_that_make_updates_work(repository: Path, tmp_path: Path):
    template = TemplateRepo(tmp_path / "releases")
    template.release("v1", mlops_files((ROOT / "copier.yml").read_text()))
    template.release("v2", {"template/docs/model_card.md": "# Model card\n\n## Owners\n"})
    result = adopt_repository(
        repository, defaults=True, template=TemplateSource.at(template.path), vcs_ref="v1"
    )
    answers = yaml.safe_load((repository / ".copier-answers.yml").read_text())
    assert answers["_src_path"] == str(template.path)
    assert answers["_commit"] == result.version == "v1"
    assert answers["project_name"] == "shop-api"
    # Everything adopt wrote is staged, nothing committed: the team reviews one change.
    staged = set(git("diff", "--cached", "--name-only", cwd=repository).splitlines())
    assert staged == {*result.added, *result.proposed.values()}
    assert ".copier-answers.yml" in staged
    assert git("log", "--format=%s", cwd=repository) == "our service"
    # Once committed, the project updates like one made with `new`.
    git("commit", "--quiet", "-m", "adopt mlopsify", cwd=repository)
    update = update_project(repository)
    assert (update.from_version, update.to_version) == ("v1", "v2")
    assert (repository / "docs/model_card.md").read_text() == "# Model card\n\n## Owners\n"
    assert_kept(repository)


def test_assess_levels_rise_once_adopt_is_committed(repository: Path, template: TemplateRepo):
    for checker in ("check-jsonschema", "kubectl", "promtool"):  # the evidence's checks
        require_tool(checker)
    before = {a.key: a.level for a in assess_repository(repository).areas}
    adopt(repository, template)
    # Staged is not committed: assess reads HEAD, so nothing has changed yet.
    assert {a.key: a.level for a in assess_repository(repository).areas} == before
    git("commit", "--quiet", "-m", "adopt", cwd=repository)
    after = {a.key: a.level for a in assess_repository(repository).areas}
    assert before == {
        "version_control": 1,
        "ci_cd": 1,
        "tests": 1,  # the CI file runs pytest, but the tests were not run (no --run)
        "containers": 1,  # their Dockerfile runs as root
        "deployment": 0,
        "data_versioning": 0,
        "data_validation": 0,
        "experiment_tracking": 0,
        "model_registry": 0,
        "model_validation": 0,
        "monitoring": 0,
        "security_compliance": 0,
        "docs_ownership": 1,
    }
    assert after == {
        "version_control": 2,
        "ci_cd": 1,  # their CI file is kept; the template's waits in .gitlab-ci.yml.mlopsify
        "tests": 1,
        "containers": 1,  # likewise their Dockerfile
        "deployment": 1,  # this small template's overlay does not build (kubectl kustomize)
        "data_versioning": 2,
        "data_validation": 2,
        "experiment_tracking": 1,  # code that logs, but no run yet
        "model_registry": 1,  # code that registers, but no registry yet
        "model_validation": 2,
        "monitoring": 2,
        "security_compliance": 1,
        "docs_ownership": 2,
    }
    assert all(after[key] >= level for key, level in before.items())


def test_adopt_refuses_what_it_cannot_adopt(
    repository: Path, template: TemplateRepo, tmp_path: Path
):
    (repository / "draft.txt").write_text("x\n")
    with pytest.raises(RepositoryStateError) as raised:
        adopt(repository, template)
    assert str(raised.value) == (
        f"{repository} has uncommitted changes (draft.txt): commit or stash them first; "
        "nothing was written"
    )
    assert not (repository / ".copier-answers.yml").exists()

    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(RepositoryStateError, match="is not a git repository: run `git init`"):
        adopt(plain, template)


def test_adopt_refuses_a_project_already_under_the_template(
    repository: Path, template: TemplateRepo
):
    adopt(repository, template)
    git("commit", "--quiet", "-m", "adopt", cwd=repository)
    with pytest.raises(RepositoryStateError) as raised:
        adopt(repository, template)
    assert str(raised.value) == (
        f"{repository} already has .copier-answers.yml: it is under the template; use `mlopsify update`"
    )


def test_adopt_refuses_a_file_where_the_template_needs_a_directory(
    repository: Path, template: TemplateRepo
):
    (repository / "monitoring").write_text("we monitor by hand\n")
    git("add", "--all", cwd=repository)
    git("commit", "--quiet", "-m", "notes", cwd=repository)
    with pytest.raises(RepositoryStateError) as raised:
        adopt(repository, template)
    assert str(raised.value).endswith("rename it, then adopt again; nothing was written")
    assert git("status", "--porcelain", cwd=repository) == ""


def test_cli_adopt_from_the_shipped_release(repository: Path):
    result = runner.invoke(app, ["adopt", str(repository), "--defaults"])
    assert result.exit_code == 0, result.output
    answers = yaml.safe_load((repository / ".copier-answers.yml").read_text())
    newest = TemplateSource.shipped().versions()[-1]
    assert answers["_src_path"] == CANONICAL_URL
    assert answers["_commit"] == newest
    assert_kept(repository)
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Adopted {repository} into template {newest}: ")
    assert "  kept      README.md  (template version in README.md.mlopsify)" in lines
    assert "  added     .copier-answers.yml" in lines
    assert lines[-3:] == [
        "Everything is staged, nothing committed. Next steps:",
        "  merge what you want from each *.mlopsify file into its original, then delete it",
        "  git add --all && git commit -m 'Adopt the mlopsify template'",
    ]
    git("commit", "--quiet", "-m", "adopt", cwd=repository)
    update = runner.invoke(app, ["update", str(repository)])
    assert update.exit_code == 0, update.output
    assert update.stdout == f"{repository} is at template {newest}: nothing to update\n"


def test_cli_adopt_without_answers_or_terminal_explains(repository: Path):
    result = runner.invoke(app, ["adopt", str(repository)])
    assert result.exit_code == 1
    assert result.stderr == (
        "error: no terminal to ask the questions on: add --defaults (with --data or --answers-file)\n"
    )
