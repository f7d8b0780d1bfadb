"""Each CI provider has a rollback job that a person starts, and it runs `make rollback`.

tests/test_image_build.py runs `make rollback` itself (the registry part for real).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers import isolated_home
from test_ci_providers import (
    github_workflow,
    gitlab_jobs,
    jenkins_stages,
    make_targets,
    string_literal,
)

from mlopsify import TemplateSource, new_project

PROVIDERS = ("gitlab", "github", "jenkins", "azure")


@pytest.fixture(scope="module")
def projects(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("rollback-jobs")
    with isolated_home(base):
        return {
            provider: new_project(
                base / provider,
                data={"ci_provider": provider},
                defaults=True,
                template=TemplateSource.at(template_dir),
            )
            for provider in PROVIDERS
        }


def test_gitlab_rollback_job_is_manual_and_needs_nothing(projects: dict[str, Path]) -> None:
    _, jobs = gitlab_jobs(projects["gitlab"])
    job = jobs["rollback-production"]
    assert job["rules"][-1] == {"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", "when": "manual"}
    assert job["needs"] == [] and job["allow_failure"] is True
    assert job["environment"] == {"name": "production", "action": "access"}
    assert job["before_script"][0] == "make setup"
    assert make_targets(job["script"]) == ['rollback ENV=prod REASON="$ROLLBACK_REASON"']
    variables = yaml.safe_load((projects["gitlab"] / ".gitlab-ci.yml").read_text())["variables"]
    assert variables["ROLLBACK_REASON"]["value"] == ""


def test_github_rollback_workflow_is_dispatched_by_hand(projects: dict[str, Path]) -> None:
    workflow = github_workflow(projects["github"], "rollback.yml")
    assert set(workflow["on"]) == {"workflow_dispatch"}
    inputs = workflow["on"]["workflow_dispatch"]["inputs"]
    assert inputs["environment"]["options"] == ["production", "staging"]
    assert inputs["reason"]["required"] is True
    job = workflow["jobs"]["rollback"]
    assert job["concurrency"] == {
        "group": "deploy-${{ inputs.environment }}",
        "cancel-in-progress": False,
    }
    assert job["env"]["REASON"] == "${{ inputs.reason }}"  # never pasted into the shell line
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert make_targets(runs) == ['rollback ENV="$ENV" REASON="$REASON"']
    uses = [step.get("uses") for step in job["steps"]]
    assert uses[0].startswith("actions/checkout@")  # pinned by commit (test_supply_chain_ci.py)
    assert uses[1] == "./.github/actions/setup"


def test_jenkins_rollback_stage_runs_only_with_a_reason(projects: dict[str, Path]) -> None:
    stages = dict(jenkins_stages(projects["jenkins"]))
    rollback = stages["rollback"]
    assert rollback.block("when").body[0] == "branch 'main'"
    assert rollback.block("when").block("expression").body == ["params.ROLLBACK_REASON?.trim()"]
    credentials = rollback.block("steps").block(r"withCredentials\(.*\)")
    assert "credentialsId: 'kubeconfig-prod'" in credentials.head
    assert credentials.body[0] == "setUp()"  # the Jenkinsfile's one set-up function
    commands = [string_literal(s, "sh") for s in credentials.body[1:] if isinstance(s, str)]
    assert commands == ['make rollback ENV=prod REASON="$ROLLBACK_REASON"']


def test_azure_rollback_is_a_pipeline_run_by_hand_behind_production(
    projects: dict[str, Path],
) -> None:
    pipeline = yaml.safe_load((projects["azure"] / ".azure-pipelines" / "rollback.yml").read_text())
    assert pipeline["trigger"] == "none" and pipeline["pr"] == "none"  # only Run pipeline starts it
    assert pipeline["parameters"] == [
        {"name": "reason", "displayName": "Why (recorded in the model registry)", "type": "string"}
    ]
    [stage] = pipeline["stages"]
    assert "refs/heads/main" in stage["condition"]
    [job] = stage["jobs"]
    assert job["environment"] == "production"  # its approvals and checks hold the rollback
    steps = job["strategy"]["runOnce"]["deploy"]["steps"]
    [rollback] = [s for s in steps if "rollback" in s.get("script", "")]
    assert make_targets([rollback["script"]]) == ['rollback ENV=prod REASON="$ROLLBACK_REASON"']
    # the reason reaches the shell as a variable, never pasted into the command line
    assert rollback["env"]["ROLLBACK_REASON"] == "${{ parameters.reason }}"
    assert rollback["env"]["KUBECONFIG"] == "$(kubeconfig.secureFilePath)"
