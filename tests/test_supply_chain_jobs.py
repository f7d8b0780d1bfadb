"""The supply-chain jobs of every CI provider: the image job's pipeline makes the serving
image's SBOM (`make sbom`) and keeps it as an artifact next to the image.

Reads rendered files only (seconds); the SBOM itself is built and validated against the
CycloneDX schema in tests/test_supply_chain_project.py.
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
