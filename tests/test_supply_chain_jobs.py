"""The supply-chain jobs of every CI provider: the image job's pipeline makes the serving
image's SBOM (`make sbom`) and keeps it as an artifact next to the image; an `audit-deps`
job (GitLab, GitHub) or stage (Jenkins) audits the lock (`make audit-deps`) beside the
tests, never holding back test, train and gate; the scheduled template-update job installs
exactly the mlopsify that ships the newest template release (`mlopsify==X.Y.Z`, from pip's own index).

Reads rendered files only (seconds). The SBOM is built and validated against the CycloneDX
schema, and GitLab's audit-deps job is run with gitlab-ci-local, in
tests/test_supply_chain_project.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers import ROOT, RenderedVariants, run

from mlopsify import __version__

SBOM = "build/sbom/serve.cdx.json"
RELEASE = yaml.safe_load((ROOT / "copier.yml").read_text())["runtime_version"]["default"]


@pytest.fixture(scope="module")
def projects(rendered: RenderedVariants) -> dict[str, Path]:
    return {ci: rendered({"ci_provider": ci}) for ci in ("github", "gitlab", "jenkins")}


def test_gitlab_keeps_the_sbom_as_an_artifact_of_the_image_stage(projects: dict[str, Path]) -> None:
    jobs = yaml.safe_load((projects["gitlab"] / ".gitlab-ci.yml").read_text())

    sbom = jobs["sbom"]
    assert (sbom["stage"], sbom["script"]) == (jobs["build-image"]["stage"], ["make sbom"])
    assert sbom["artifacts"]["paths"] == [SBOM]
    assert sbom["artifacts"]["expire_in"] == "never"
    assert sbom["extends"] == [".setup", ".delivery-job"]


def test_github_image_job_uploads_the_sbom(projects: dict[str, Path]) -> None:
    workflow = yaml.safe_load((projects["github"] / ".github/workflows/ci.yml").read_text())
    steps = workflow["jobs"]["image"]["steps"]
    runs = [step.get("run") for step in steps]

    assert runs.index("make push") < runs.index("make sbom")
    (upload,) = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["with"]["path"].split() == [SBOM]  # a block of paths, of one here
    assert steps.index(upload) > runs.index("make sbom")


def test_jenkins_image_stage_archives_the_sbom(projects: dict[str, Path]) -> None:
    jenkinsfile = (projects["jenkins"] / "Jenkinsfile").read_text()
    image_stage = jenkinsfile.split("stage('image')")[1].split("stage(")[0]

    assert "sh 'make sbom'" in image_stage
    assert f"archiveArtifacts artifacts: '{SBOM}', fingerprint: true" in image_stage


def test_every_provider_runs_make_audit_deps_in_its_own_job(projects: dict[str, Path]) -> None:
    gitlab = yaml.safe_load((projects["gitlab"] / ".gitlab-ci.yml").read_text())
    assert gitlab["audit-deps"]["script"] == ["make audit-deps"]
    assert gitlab["audit-deps"]["extends"] == ".ml-job"  # make setup installs pip-audit
    assert gitlab["stages"][:3] == ["lint", "audit-deps", "test"]

    github = yaml.safe_load((projects["github"] / ".github/workflows/ci.yml").read_text())
    steps = github["jobs"]["audit-deps"]["steps"]
    assert [s.get("uses", "").split("@")[0] for s in steps[:2]] == [
        "actions/checkout",
        "./.github/actions/setup",
    ]
    assert steps[-1] == {"run": "make audit-deps"}
    assert github["jobs"]["audit-deps"]["permissions"] == {"contents": "read"}

    jenkinsfile = (projects["jenkins"] / "Jenkinsfile").read_text()
    stage = jenkinsfile.split("stage('audit-deps')")[1].split("stage(")[0]
    assert "sh 'make audit-deps'" in stage


def test_no_providers_training_waits_for_the_audit(projects: dict[str, Path]) -> None:
    gitlab = yaml.safe_load((projects["gitlab"] / ".gitlab-ci.yml").read_text())
    # A job without needs waits for every job of the earlier stages: each ML job names its own.
    assert gitlab["audit-deps"]["needs"] == []
    assert gitlab["test"]["needs"] == ["lint"]
    assert gitlab["validate"]["needs"] == ["test"]
    assert gitlab["train"]["needs"] == ["validate"]
    assert gitlab["gate"]["needs"] == ["train"]
    needed = {n for job in gitlab.values() if isinstance(job, dict) for n in job.get("needs", [])}
    assert "audit-deps" not in needed

    github = yaml.safe_load((projects["github"] / ".github/workflows/ci.yml").read_text())
    assert github["jobs"]["test"]["needs"] == "lint"
    assert not [
        job for job, body in github["jobs"].items() if "audit-deps" in body.get("needs", [])
    ]

    jenkinsfile = (projects["jenkins"] / "Jenkinsfile").read_text()
    stage = jenkinsfile.split("stage('audit-deps') {")[1].split("stage(")[0]
    assert (
        "catchError(buildResult: 'UNSTABLE', stageResult: 'FAILURE') {\n"
        "                            sh 'make audit-deps'\n"
        "                        }"
    ) in stage


def test_template_update_installs_the_mlopsify_of_the_newest_release_pinned(
    projects: dict[str, Path],
) -> None:
    """The scheduled job runs `make template-update`, which installs exactly the mlopsify that
    ships the newest release (the version the release check reads from the template's tags)."""
    assert __version__ == RELEASE  # mlopsify and the template share one version
    gitlab = yaml.safe_load((projects["gitlab"] / ".gitlab-ci.yml").read_text())
    assert gitlab["template-update"]["script"][0] == "make setup"
    assert gitlab["template-update"]["script"][-1] == "make template-update"
    workflow = (projects["github"] / ".github/workflows/template-update.yml").read_text()
    steps = yaml.safe_load(workflow)["jobs"]["template-update"]["steps"]
    assert [step.get("run") for step in steps[1:]] == ["make setup", "make template-update"]
    assert "${{ github.token }}" in steps[2]["env"]["TEMPLATE_UPDATE_TOKEN"]
    jenkinsfile = (projects["jenkins"] / "Jenkinsfile").read_text()
    assert "sh 'make template-update'" in jenkinsfile.split("stage('template-update')")[1]
    wheel = f"vendor/mlopsify_runtime-{RELEASE}-py3-none-any.whl"
    for project in projects.values():
        for name in (".gitlab-ci.yml", "Jenkinsfile", ".github/workflows/template-update.yml"):
            if (project / name).exists():
                text = (project / name).read_text()
                assert (
                    "pip install" not in text
                    or "mlopsify" not in text.split("pip install", 1)[1][:40]
                ), name
        recipe = run("make", "-n", "template-update", cwd=project).stdout
        assert (
            f"newest=$(PYTHONPATH={wheel} python3 -m mlopsify_runtime.template_update_check --newest) || exit 2;"
        ) in recipe
        assert 'pip install --quiet "mlopsify==$newest"' in recipe
        assert "--index-url" not in recipe and "--extra-index-url" not in recipe
