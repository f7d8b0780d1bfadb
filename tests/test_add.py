"""`mlopsify add`: services come from the template's questions; adding one is an update."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers import ROOT
from template_repos import TemplateRepo, git
from typer.testing import CliRunner

from mlopsify import (
    InvalidAnswerError,
    RepositoryStateError,
    TemplateSource,
    UpdateConflictError,
    new_project,
)
from mlopsify.cli import app
from mlopsify.services import add_service, list_services
from mlopsify.template import Release

runner = CliRunner()
CONFIG = yaml.safe_load((ROOT / "copier.yml").read_text())

# The real questions (copier.yml of the working tree) over a few files of our own, one per service.
FILES = {
    "copier.yml": (ROOT / "copier.yml").read_text(),
    "template/{{_copier_conf.answers_file}}.jinja": "{{ _copier_answers|to_nice_yaml -}}\n",
    "template/README.md.jinja": "# {{ project_name }}\n\nRelease one.\n",
    "template/{% if ci_provider == 'gitlab' %}.gitlab-ci.yml{% endif %}": "test:\n  script: make test\n",
    "template/{% if ci_provider == 'github' %}.github{% endif %}/workflows/ci.yml": "on: push\n",
    "template/{% if ci_provider == 'jenkins' %}Jenkinsfile{% endif %}": "pipeline {}\n",
    "template/{% if use_monitoring %}monitoring{% endif %}/rules.yml": "groups: []\n",
    "template/{% if use_kubernetes %}deploy{% endif %}/kustomization.yaml.jinja": (
        "namespace: {{ k8s_namespace }}\n"
    ),
    "template/{% if use_kubernetes %}deploy{% endif %}/{% if use_tracking_server %}tracking{% endif %}/Dockerfile": (
        "FROM mlflow\n"
    ),
    "template/.dvc/config.jinja": "['remote \"storage\"']\n    url = {{ dvc_remote_url }}\n",
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> TemplateRepo:
    repo = TemplateRepo(tmp_path_factory.mktemp("templates") / "services")
    repo.release("v1", FILES)
    # A newer release: adding a service must not move the project to it.
    repo.release("v2", {"template/README.md.jinja": "# {{ project_name }}\n\nRelease two.\n"})
    return repo


@pytest.fixture
def project(template: TemplateRepo, tmp_path: Path) -> Path:
    return new_project(
        tmp_path / "shop-model",
        data={"use_kubernetes": False, "use_monitoring": False},
        defaults=True,
        template=TemplateSource.at(template.path),
        vcs_ref="v1",
    )


def answers(project: Path) -> dict[str, object]:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


def commit(project: Path) -> None:
    git("add", "--all", cwd=project)
    git("commit", "--quiet", "-m", "user change", cwd=project)


def expected_services() -> list[tuple[str, str, object]]:
    """Read from copier.yml itself, so a new choice is listed without editing this test."""
    found: list[tuple[str, str, object]] = []
    for question in (
        "ci_provider",
        "use_kubernetes",
        "use_monitoring",
        "use_tracking_server",
        "dvc_remote_kind",
        "compliance",
        "orchestrator",
    ):
        spec = CONFIG[question]
        if spec["type"] == "bool":
            found.append((question.removeprefix("use_"), question, True))
        else:
            values = (
                spec["choices"].values() if isinstance(spec["choices"], dict) else spec["choices"]
            )
            taken = {name for name, _, _ in found}
            found += [
                (f"{question}={v}" if str(v) in taken else str(v), question, v)
                for v in values
                if v != "none"
            ]
    return found


def test_services_are_the_choices_and_switches_of_copier_yml():
    services = Release("working tree", CONFIG).services
    assert [(s.name, s.question, s.value) for s in services] == expected_services()
    names = [s.name for s in services]
    for name in (
        "gitlab",
        "jenkins",
        "github",
        "kubernetes",
        "monitoring",
        "tracking_server",
        "s3",
        "gcs",
        "azure",  # Azure Pipelines, the CI provider
        "dvc_remote_kind=azure",  # the Azure Blob DVC remote: its value is taken
        "ssh",
        "local",
        "gdpr",
        "hipaa",
        "kubeflow",
        "airflow",
    ):
        assert name in names
    assert "none" not in names


def test_list_marks_the_services_that_are_on(project: Path):
    listing = list_services(project)
    assert listing.version == "v1"
    on = [s.name for s in listing.services if listing.is_on(s)]
    assert on == ["gitlab", "local", "dvc"]


def test_add_a_ci_provider_switches_the_files_and_keeps_user_edits(project: Path):
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "Our notes.\n")
    commit(project)
    added = add_service(project, "github")
    assert added.previous == "gitlab"
    assert added.update is not None
    assert (project / ".github/workflows/ci.yml").read_text() == "on: push\n"
    assert not (project / ".gitlab-ci.yml").exists()
    assert readme.read_text() == "# shop-model\n\nRelease one.\nOur notes.\n"
    recorded = answers(project)
    assert recorded["ci_provider"] == "github"
    assert recorded["_commit"] == "v1"  # adding does not upgrade the template


def test_switching_ci_keeps_an_edited_ci_file_as_a_conflict(project: Path):
    ci = project / ".gitlab-ci.yml"
    ci.write_text(ci.read_text() + "deploy:\n  script: ./ship.sh\n")
    commit(project)
    with pytest.raises(UpdateConflictError) as raised:
        add_service(project, "github")
    assert raised.value.conflicted == [".gitlab-ci.yml"]
    assert "the template removed .gitlab-ci.yml, which you changed" in str(raised.value)
    assert ci.read_text() == "test:\n  script: make test\ndeploy:\n  script: ./ship.sh\n"
    assert (project / ".github/workflows/ci.yml").is_file()


def test_add_kubernetes_asks_nothing_and_takes_the_dependent_default(project: Path):
    add_service(project, "kubernetes")
    assert (project / "deploy/kustomization.yaml").read_text() == "namespace: shop-model\n"
    assert answers(project)["use_kubernetes"] is True
    assert answers(project)["k8s_namespace"] == "shop-model"


def test_add_tracking_server_needs_kubernetes_first(project: Path):
    with pytest.raises(InvalidAnswerError) as raised:
        add_service(project, "tracking_server")
    assert raised.value.exit_code == 3
    assert str(raised.value) == (
        "use_tracking_server needs use_kubernetes: the tracking server runs in the cluster;"
        " add Kubernetes first (mlopsify add kubernetes)"
    )
    assert git("status", "--porcelain", cwd=project) == ""
    add_service(project, "kubernetes")
    assert answers(project)["use_tracking_server"] is False
    assert not (project / "deploy/tracking").exists()
    commit(project)
    add_service(project, "tracking_server")
    assert answers(project)["use_tracking_server"] is True
    assert (project / "deploy/tracking/Dockerfile").read_text() == "FROM mlflow\n"


def test_add_a_dvc_remote_moves_a_default_url_along(project: Path):
    assert answers(project)["dvc_remote_url"] == "../shop-model-dvc-storage"
    add_service(project, "s3")
    assert answers(project)["dvc_remote_url"] == "s3://shop-model-dvc/store"
    assert "url = s3://shop-model-dvc/store" in (project / ".dvc/config").read_text()


def test_add_a_dvc_remote_keeps_a_chosen_url_and_the_validator_explains(
    template: TemplateRepo, tmp_path: Path
):
    project = new_project(
        tmp_path / "custom",
        data={"dvc_remote_url": "/srv/dvc"},
        defaults=True,
        template=TemplateSource.at(template.path),
        vcs_ref="v1",
    )
    before = (project / ".dvc/config").read_text()
    # The user chose their own URL: mlopsify keeps it, and it cannot be an s3 remote.
    with pytest.raises(InvalidAnswerError) as raised:
        add_service(project, "s3")
    assert raised.value.exit_code == 3
    assert str(raised.value) == (
        "dvc_remote_url '/srv/dvc' does not fit dvc_remote_kind s3: it must start with s3://"
    )
    assert git("status", "--porcelain", cwd=project) == ""
    assert (project / ".dvc/config").read_text() == before
    add_service(project, "s3", data={"dvc_remote_url": "s3://models/shop"})
    assert answers(project)["dvc_remote_url"] == "s3://models/shop"


def test_unknown_service_lists_the_known_ones(project: Path):
    with pytest.raises(InvalidAnswerError) as raised:
        add_service(project, "spark")
    names = ", ".join(name for name, _, _ in expected_services())
    assert str(raised.value) == f"unknown service spark: use one of {names}"


def test_add_refuses_a_dirty_tree(project: Path):
    (project / "draft.txt").write_text("x\n")
    with pytest.raises(RepositoryStateError):
        add_service(project, "github")
    assert answers(project)["ci_provider"] == "gitlab"


# ------------------------------------------------------------------ the command line


def test_cli_add_lists_services(project: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(project)
    result = runner.invoke(app, ["add"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Services of template v1 (mlopsify add SERVICE):"
    assert '  gitlab      ci_provider="gitlab"  (on)' in lines
    assert "  kubernetes  use_kubernetes=true" in lines
    assert '  hipaa       compliance="hipaa"' in lines
    assert len(lines) == 1 + len(expected_services())


def test_cli_add_lists_the_shipped_services_outside_a_project(chdir_tmp: Path):
    result = runner.invoke(app, ["add"])
    assert result.exit_code == 0, result.output
    newest = TemplateSource.shipped().versions()[-1]
    assert result.stdout.splitlines()[0] == f"Services of template {newest} (mlopsify add SERVICE):"


def test_cli_add_reports_the_answer_and_the_files(project: Path):
    result = runner.invoke(app, ["add", "monitoring", str(project)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Added monitoring: use_monitoring false -> true",
        "  modified  .copier-answers.yml",
        "  added     monitoring/rules.yml",
        "Review with `git diff`, then commit.",
    ]
    commit(project)
    again = runner.invoke(app, ["add", "monitoring", str(project)])
    assert again.exit_code == 0
    assert again.stdout == "monitoring is already on (use_monitoring: true): nothing to do\n"


def test_cli_add_pretend_writes_nothing(project: Path):
    result = runner.invoke(app, ["add", "jenkins", str(project), "--pretend"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == 'Would add jenkins: ci_provider "gitlab" -> "jenkins"'
    assert "  added     Jenkinsfile" in result.stdout.splitlines()
    assert not (project / "Jenkinsfile").exists()
    assert git("status", "--porcelain", cwd=project) == ""


def test_cli_add_unknown_service_exits_3(project: Path):
    result = runner.invoke(app, ["add", "spark", str(project)])
    assert result.exit_code == 3
    assert result.stderr.startswith("error: unknown service spark: use one of gitlab, jenkins")
