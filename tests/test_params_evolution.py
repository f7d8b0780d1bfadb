"""Every service of copier.yml added to a real project later: its parameters and stages arrive whole.

A project made with a service off, then `mlopsify add SERVICE`, must run `make pipeline
test` like one made with it on (issue: `add monitoring` once left params.yaml without its
`monitoring:` section, so `dvc repro` and `make test` failed with KeyError). One project
takes every service in turn, through the real template as its next release, with one
environment.
"""

from __future__ import annotations

import re

import pytest
import yaml
from helpers import ROOT, require_tool
from template_releases import Workspace, make_in_shared_env, next_release_bundle

pytestmark = pytest.mark.slow

CONFIG = yaml.safe_load((ROOT / "copier.yml").read_text())
# Everything off; a choice question starts at a value whose service is added again last.
START = {
    "ci_provider": "none",
    "use_kubernetes": "false",
    "use_monitoring": "false",
    "compliance": "none",
    "dvc_remote_kind": "ssh",
    "orchestrator": "dvc",
}
# Switching the orchestrator changes no parameter; each engine needs its own extra and a
# full orchestrated run, which tests/test_orchestrators.py and test_orchestrator_switch.py do.
ORCHESTRATORS = {"dvc", "kubeflow", "airflow"}
# What the generated tests read: code, tests, parameters, schema, the Makefile and make/. Not
# pyproject.toml: the shared environment is set up once, so a changed dependency list
# (dvc[s3] for s3) cannot change the run.
TESTS_READ = re.compile(r"^(src/|tests/|data/|monitoring/|params\.yaml|dvc\.yaml|Makefile|make/)")
LISTED = re.compile(r"^  (?P<name>\S+)\s+(?P<question>\w+)=(?P<value>\S+)(?P<on>\s+\(on\))?$")


def choice_values(question: str) -> set[str]:
    choices = CONFIG[question]["choices"]
    return set(choices.values() if isinstance(choices, dict) else choices) - {"none"}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("params-evolution")
    return Workspace(root, next_release_bundle(root / "release"))


def test_every_service_added_later_runs_pipeline_and_tests(workspace: Workspace) -> None:
    require_tool("make")
    require_tool("git")
    data = [arg for key, value in START.items() for arg in ("--data", f"{key}={value}")]
    workspace.mlopsify("new", "shop-model", "--defaults", *data, cwd=workspace.root)
    project = workspace.root / "shop-model"
    assert "monitoring" not in yaml.safe_load((project / "params.yaml").read_text())

    listing = workspace.mlopsify("add", cwd=project).stdout.splitlines()
    services = [m.groupdict() for m in map(LISTED.match, listing) if m]
    # The listing covers every service copier.yml defines, and only those start on.
    names = {s["name"] for s in services}
    for question in ("ci_provider", "dvc_remote_kind", "compliance"):
        assert choice_values(question) <= names, question
    assert {"kubernetes", "monitoring"} <= names
    assert [s["name"] for s in services if s["on"]] == ["ssh", "dvc"]
    assert {s["name"] for s in services if s["question"] == "orchestrator"} == ORCHESTRATORS
    order = [s["name"] for s in services if not s["on"] and s["name"] not in ORCHESTRATORS]
    order += ["ssh"]

    venv = workspace.root / "env"
    make_in_shared_env(workspace, project, venv, "setup")
    workspace.commit(project, "lock the dependencies")  # the first `make setup` wrote the lock
    tested = []
    for service in order:
        added = workspace.mlopsify("add", service, cwd=project)
        assert added.stdout.startswith(f"Added {service}: "), added.stdout
        workspace.commit(project, f"add {service}")
        changed = [line.split()[-1] for line in added.stdout.splitlines()[1:] if line[:2] == "  "]
        # `make test` runs again when the add changed what the tests read; otherwise its
        # verdict cannot change, and the 30 s run is saved. The pipeline always runs.
        targets = ["pipeline", "test"] if any(map(TESTS_READ.match, changed)) else ["pipeline"]
        make_in_shared_env(workspace, project, venv, *targets)
        tested += [service] if "test" in targets else []
        # The pipeline's outputs are tracked (dvc.lock) or ignored: nothing is left to commit.
        workspace.commit(project, f"pipeline after {service}")

    assert {"monitoring", "kubernetes"} <= set(tested), tested
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert "monitoring" in params
    assert (project / "models" / "monitoring.json").is_file()
