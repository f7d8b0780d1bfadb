"""The supply-chain jobs of every CI provider: the image job's pipeline makes the serving
image's SBOM (`make sbom`) and keeps it as an artifact next to the image; an `audit-deps`
job (GitLab, GitHub) or stage (Jenkins) audits the lock (`make audit-deps`) before the tests.

Reads rendered files only (seconds). The SBOM is built and validated against the CycloneDX
schema, and GitLab's audit-deps job is run with gitlab-ci-local, in
tests/test_supply_chain_project.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers import RenderedVariants

SBOM = "build/sbom/serve.cdx.json"


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
    assert upload["with"]["path"] == SBOM
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
