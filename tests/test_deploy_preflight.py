"""Deploy preflight: what is missing is named in one line, before any kubectl call.

No API server runs here: kubectl is a fake on PATH that records each call and fails (said
here, as the rules ask), so the tests see whether deploy reached kubectl at all.
gitlab-ci-local runs the GitLab deploy job itself up to the preflight message.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
from helpers import isolated_home, require_tool, run

from mlopsify import TemplateSource, new_project

KUBECONFIG_MISSING = (
    "preflight: KUBECONFIG is not set: set it to the path of the cluster's kubeconfig "
    "(in CI: the KUBECONFIG secret)"
)


def fake_kubectl(directory: Path) -> Path:
    """A kubectl that records its arguments in calls.log (the cluster cannot exist here)."""
    directory.mkdir(parents=True, exist_ok=True)
    kubectl = directory / "kubectl"
    kubectl.write_text(
        '#!/bin/sh\nprintf \'%s\\n\' "kubectl $*" >> "$(dirname "$0")/calls.log"\n'
        'case "$1" in kustomize) exec "$REAL_KUBECTL" "$@";; esac\n'
    )
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IEXEC)
    return kubectl


def kubectl_calls(kubectl: Path) -> list[str]:
    log = kubectl.parent / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture(scope="module")
def project(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("preflight")
    with isolated_home(base):
        return new_project(
            base / "Credit_Risk",
            data={"ci_provider": "gitlab"},
            defaults=True,
            template=TemplateSource.at(template_dir),
        )


def make(project: Path, kubectl: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    clean.update(
        PATH=f"{kubectl.parent}:{clean['PATH']}", REAL_KUBECTL=require_tool("kubectl"), **env
    )
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=project,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_each_missing_input_is_named_before_any_kubectl_call(project: Path, tmp_path: Path) -> None:
    kubectl = fake_kubectl(tmp_path / "bin")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    empty = tmp_path / "empty"
    empty.write_text("")
    cases = {
        ("deploy", "ENV=qa"): "ENV must be one of: dev staging prod (e.g. make deploy ENV=staging)",
        ("deploy", "ENV=staging"): KUBECONFIG_MISSING,
        ("deploy", "ENV=staging", f"KUBECONFIG={empty}"): (
            f"preflight: KUBECONFIG names {empty}, which is missing or empty: set it to the path "
            "of the cluster's kubeconfig (in CI: the KUBECONFIG secret)"
        ),
        ("deploy", "ENV=prod", f"KUBECONFIG={kubeconfig}", "REGISTRY="): (
            "preflight: REGISTRY is not set: set it to the registry that holds the image "
            "(e.g. REGISTRY=registry.example.com/ml)"
        ),
        ("deploy", "ENV=prod", f"KUBECONFIG={kubeconfig}", "IMAGE_TAG="): (
            "preflight: IMAGE_TAG is not set: set it to the tag that make push pushed "
            "(e.g. IMAGE_TAG=$(git rev-parse --short HEAD))"
        ),
        ("rollback", "ENV=prod"): (
            "rollback: REASON is not set: say why, e.g. make rollback ENV=prod "
            "REASON='error rate doubled after the last deploy'"
        ),
        ("rollback", "ENV=prod", "REASON=slow"): KUBECONFIG_MISSING,
        ("retrain", "ENV=dev"): KUBECONFIG_MISSING,
    }
    for args, message in cases.items():
        env = dict(a.split("=", 1) for a in args[1:] if a.startswith("KUBECONFIG="))
        made = make(project, kubectl, *[a for a in args if not a.startswith("KUBECONFIG=")], **env)
        assert (made.returncode, made.stderr.strip().splitlines()[0]) == (2, message), args
        assert len(made.stderr.strip().splitlines()) == 2, made.stderr  # make's own "Error 2"
        assert kubectl_calls(kubectl) == [], args

    passed = make(project, kubectl, "preflight", "ENV=prod", KUBECONFIG=str(kubeconfig))
    assert (passed.returncode, passed.stdout, passed.stderr) == (0, "", "")
    deployed = make(
        project, kubectl, "deploy", "ENV=staging", "IMAGE_TAG=abc1234", KUBECONFIG=str(kubeconfig)
    )
    assert deployed.returncode == 0, deployed.stderr
    assert kubectl_calls(kubectl) == [
        "kubectl apply -k build/deploy/staging",
        "kubectl -n credit-risk-staging rollout status deployment/credit-risk --timeout=10m",
    ]


def test_gitlab_ci_local_runs_the_deploy_job_up_to_the_preflight_message(
    project: Path, tmp_path: Path
) -> None:
    """The deploy-staging job as GitLab runs it, in the shell, with no cluster credentials."""
    tool = require_tool("gitlab-ci-local")
    require_tool("rsync")
    kubectl = fake_kubectl(tmp_path / "bin")
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update(PATH=f"{kubectl.parent}:{env['PATH']}", REAL_KUBECTL=require_tool("kubectl"))
    completed = subprocess.run(
        [tool, "--force-shell-executor", "--shell-isolation", "deploy-staging"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0
    assert re.search(r"^ FAIL  deploy-staging", completed.stdout, re.M), output[-4000:]
    assert KUBECONFIG_MISSING in output, output[-4000:]
    assert "$ make promote ENV=staging" in output
    assert kubectl_calls(kubectl) == [], "deploy called kubectl without credentials"


def test_the_deploy_job_gets_no_cluster_credentials_from_the_checkout(project: Path) -> None:
    ci = (project / ".gitlab-ci.yml").read_text()
    assert "KUBECONFIG" not in ci, "the credentials are a CI/CD variable, never in the file"
    run("git", "ls-files", "--error-unmatch", ".gitlab-ci.yml", cwd=project)
