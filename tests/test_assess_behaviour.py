"""`mlopsify assess` earns levels by evidence that runs, read from the commit at HEAD.

On repositories shaped like public ones (adopt_fixtures.py): a notebook-only repository does
not score high right after adopt; failing tests earn no test level with --run; the Dockerfile
of an MLflow server earns no container marks for a service whose own image runs as root; a
checker that is not installed earns nothing.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import adopt_fixtures
import pytest
from helpers import require_tool
from template_releases import next_release, shipped_is_next_release  # noqa: F401 (fixtures)
from template_repos import git
from typer.testing import CliRunner

from mlopsify.assessment_checks import jenkinsfile_structure
from mlopsify.assessment_images import service_dockerfile
from mlopsify.cli import app

runner = CliRunner()
GITHUB_OK = "passed: check-jsonschema vendor.github-workflows"


def assess(path: Path, *options: str) -> dict[str, Any]:
    result = runner.invoke(app, ["assess", str(path), "--json", *options])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def area(report: dict[str, Any], key: str) -> dict[str, Any]:
    [found] = [a for a in report["areas"] if a["id"] == key]
    return dict(found)


def evidence(report: dict[str, Any], key: str) -> list[tuple[str, str, int, str, bool]]:
    return [
        (e["path"], e["finding"], e["level"], e["check"], e["earned"])
        for e in area(report, key)["evidence"]
    ]


def levels(report: dict[str, Any]) -> dict[str, int]:
    return {a["id"]: a["level"] for a in report["areas"]}


@pytest.fixture
def checkers() -> None:
    for tool in ("check-jsonschema", "kubectl", "promtool"):
        require_tool(tool)


def only_git_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH with git and nothing else: every other checker is not installed."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").symlink_to(require_tool("git"))
    monkeypatch.setenv("PATH", str(bin_dir))


# ------------------------------------------------------------------ committed, not staged


@pytest.mark.usefixtures("shipped_is_next_release", "checkers")
def test_notebook_repository_scores_what_its_commit_holds(tmp_path: Path):
    repo = adopt_fixtures.notebooks(tmp_path / "explore")
    table = runner.invoke(app, ["assess", str(repo)])
    assert table.exit_code == 0, table.output
    assert (
        table.stdout.splitlines()[0] == f"MLOps maturity of {repo} (not made with mlopsify): 2/26"
    )
    before = assess(repo)
    assert runner.invoke(app, ["adopt", str(repo), "--defaults"]).exit_code == 0
    # Everything adopt wrote is staged, nothing committed: the score has not moved.
    after_adopt = assess(repo)
    assert (after_adopt["score"], after_adopt["committed_only"]) == (2, True)
    assert levels(after_adopt) == levels(before)
    git("commit", "--quiet", "--no-verify", "-m", "adopt", cwd=repo)
    committed = assess(repo)
    # Committed, never run: the tests, the tracked runs and the registry are still to earn.
    assert levels(committed) == {
        "version_control": 2,
        "ci_cd": 2,
        "tests": 1,
        "containers": 2,
        "deployment": 2,
        "data_versioning": 2,
        "data_validation": 2,
        "experiment_tracking": 1,
        "model_registry": 1,
        "model_validation": 2,
        "monitoring": 2,
        "security_compliance": 1,
        "docs_ownership": 2,
    }
    assert (
        "tests",
        "the tests pass",
        2,
        "not checked: the tests were not run (assess --run runs them)",
        False,
    ) in (evidence(committed, "tests"))
    assert [e for e in evidence(committed, "model_registry") if e[2] == 2] == []


# ------------------------------------------------------------------ tests that run


@pytest.mark.usefixtures("checkers")
@pytest.mark.parametrize(
    ("failing", "level", "verdict"),
    [(True, 1, "failed: pytest: 1 failed"), (False, 2, "passed: pytest: 1 passed")],
)
def test_run_earns_the_test_level_only_when_the_tests_pass(
    tmp_path: Path, failing: bool, level: int, verdict: str
):
    repo = adopt_fixtures.service(tmp_path / "shop", failing_tests=failing)
    report = assess(repo, "--run")
    assert report["tests_run"] is True
    assert area(report, "tests")["level"] == level
    assert evidence(report, "tests") == [
        (".github/workflows/ci.yml", "CI runs the tests", 2, GITHUB_OK, True),
        ("tests", "the tests pass", 2, verdict, not failing),
        ("tests/test_app.py", "tests", 1, "passed: pytest --collect-only: 1 test collected", True),
    ]


def test_run_collects_a_tests_package(tmp_path: Path):
    repo = adopt_fixtures.ml_service(tmp_path / "churn")
    report = assess(repo, "--run")
    assert ("tests", "the tests pass", 2, "passed: pytest: 1 passed", True) in evidence(
        report, "tests"
    )


# ------------------------------------------------------------------ the service's image


@pytest.mark.usefixtures("checkers")
def test_mlflow_server_dockerfile_earns_no_container_marks_for_a_root_service(tmp_path: Path):
    repo = adopt_fixtures.service(tmp_path / "shop")
    report = assess(repo)
    assert area(report, "containers")["level"] == 1
    not_counted = "not counted: the service's image is built from Dockerfile"
    assert evidence(report, "containers") == [
        (
            "Dockerfile",
            "image runs as a non-root user",
            2,
            "failed: the service's image runs as root (no USER in its last stage)",
            False,
        ),
        ("deploy/tracking/Dockerfile", "image runs as a non-root user", 2, not_counted, False),
        ("Dockerfile", "container build", 1, "passed: the service's image", True),
        ("deploy/tracking/Dockerfile", "container build", 1, not_counted, False),
    ]


def test_a_tool_server_image_alone_is_no_service_image(tmp_path: Path):
    repo = adopt_fixtures.commit(
        tmp_path / "tracking", {"deploy/tracking/Dockerfile": adopt_fixtures.TRACKING_DOCKERFILE}
    )
    report = assess(repo)
    assert area(report, "containers")["level"] == 0
    assert {e[3] for e in evidence(report, "containers")} == {
        "not counted: no Dockerfile builds the service (each one runs a tool's server)"
    }


def test_the_dockerfile_ci_builds_is_the_service_image(tmp_path: Path):
    files = {
        "Dockerfile": "FROM python:3.11\n",  # a development image, as root
        "docker/api.Dockerfile": "FROM python:3.11-slim\nUSER app\n",
        "Makefile": "image:\n\tdocker build -f docker/api.Dockerfile -t shop .\n",
    }
    repo = adopt_fixtures.commit(tmp_path / "shop", files)
    assert service_dockerfile(repo, sorted(files)) == (
        "docker/api.Dockerfile",
        "built by CI or the Makefile",
    )
    report = assess(repo)
    assert area(report, "containers")["level"] == 2
    assert evidence(report, "containers")[:2] == [
        (
            "docker/api.Dockerfile",
            "image runs as a non-root user",
            2,
            "passed: the service's image runs as app",
            True,
        ),
        (
            "Dockerfile",
            "image runs as a non-root user",
            2,
            "not counted: the service's image is built from docker/api.Dockerfile",
            False,
        ),
    ]


# ------------------------------------------------------------------ checkers


def test_a_checker_that_is_not_installed_earns_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    repo = adopt_fixtures.service(tmp_path / "shop")
    only_git_on_path(tmp_path, monkeypatch)
    report = assess(repo)
    assert area(report, "ci_cd")["level"] == 0
    # The repository's provider is still the one suggested.
    assert area(report, "ci_cd")["commands"] == ["mlopsify adopt --data ci_provider=github"]
    assert evidence(report, "ci_cd") == [
        (path, "GitHub Actions workflow", 1, "not checked: check-jsonschema not installed", False)
        for path in (".github/workflows/ci.yml", ".github/workflows/deploy.yml")
    ]


@pytest.mark.parametrize(
    ("pipeline", "level", "verdict"),
    [
        (
            adopt_fixtures.ML_DVC,
            1,
            "passed: 2 stages, no cycle or output written twice (dvc not installed: dvc.yaml read by mlopsify)",
        ),
        (
            "stages:\n  a:\n    cmd: a\n    deps: [y]\n    outs: [x]\n  b:\n    cmd: b\n    deps: [x]\n    outs: [y]\n",
            0,
            "failed: the stages form a cycle through a (dvc not installed: dvc.yaml read by mlopsify)",
        ),
        (
            "stages:\n  a:\n    cmd: a\n    outs: [x]\n  b:\n    cmd: b\n    outs: [x]\n",
            0,
            "failed: x is an output of both a and b (dvc not installed: dvc.yaml read by mlopsify)",
        ),
    ],
)
def test_without_dvc_the_pipeline_graph_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipeline: str, level: int, verdict: str
):
    repo = adopt_fixtures.commit(tmp_path / "churn", {"dvc.yaml": pipeline})
    only_git_on_path(tmp_path, monkeypatch)
    report = assess(repo)
    assert evidence(report, "data_versioning") == [
        ("dvc.yaml", "a DVC pipeline", 1, verdict, level == 1)
    ]
    assert area(report, "data_versioning")["level"] == level


def test_jenkinsfile_needs_a_declarative_structure():
    assert (
        jenkinsfile_structure(
            "pipeline {\n  agent any\n  stages {\n    stage('test') { steps { sh 'make test' } }\n  }\n}\n"
        ).note
        == "passed: declarative structure (pipeline, agent, stages, steps)"
    )
    assert jenkinsfile_structure(
        "pipeline { stages { stage('t') { steps { sh 'x' } } } }\n"
    ).note == ("failed: declarative structure: no agent directive")
    assert jenkinsfile_structure("node { sh 'make test' }\n").note == (
        "failed: declarative structure: the file does not start with `pipeline {`"
    )
    assert (
        jenkinsfile_structure("pipeline { agent any\n").note
        == "failed: declarative structure: unbalanced braces"
    )


@pytest.mark.usefixtures("checkers")
def test_alert_rules_must_pass_promtool(tmp_path: Path):
    rules = "groups:\n  - name: model\n    rules:\n      - alert: Down\n        expr: up ==\n"
    repo = adopt_fixtures.commit(tmp_path / "svc", {"monitoring/alerts.yml": rules})
    [(path, _, level, verdict, earned)] = evidence(assess(repo), "monitoring")
    assert (path, level, earned) == ("monitoring/alerts.yml", 2, False)
    assert verdict.startswith("failed: promtool check rules: ")


# ------------------------------------------------------------------ the registry


def mlflow_db(path: Path, *, alias: str | None) -> None:
    """The tables of MLflow's SQLite store that assess reads, with the columns it reads.

    MLflow (850 MB) is not installed in the test environment: the rows are written directly.
    """
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE registered_models (name TEXT PRIMARY KEY)")
        db.execute("CREATE TABLE registered_model_aliases (alias TEXT, version INTEGER, name TEXT)")
        db.execute("CREATE TABLE metrics (key TEXT, value REAL, run_uuid TEXT)")
        db.execute("CREATE TABLE params (key TEXT, value TEXT, run_uuid TEXT)")
        db.execute("INSERT INTO registered_models VALUES ('churn')")
        db.execute("INSERT INTO metrics VALUES ('f1', 0.9, 'r1')")
        db.execute("INSERT INTO params VALUES ('C', '1.0', 'r1')")
        if alias:
            db.execute("INSERT INTO registered_model_aliases VALUES (?, 3, 'churn')", (alias,))


@pytest.mark.parametrize(
    ("alias", "level", "verdict"),
    [
        ("champion", 2, "passed: churn version 3 holds the alias champion"),
        ("staging", 1, "failed: no registered model holds the alias champion"),
        (None, 1, "failed: no registered model holds the alias champion"),
    ],
)
def test_registry_level_comes_from_the_mlflow_database(
    tmp_path: Path, alias: str | None, level: int, verdict: str
):
    repo = adopt_fixtures.commit(
        tmp_path / "churn", {".gitignore": "mlflow.db\n", "README.md": "# churn\n"}
    )
    mlflow_db(repo / "mlflow.db", alias=alias)
    report = assess(repo)
    assert evidence(report, "model_registry") == [
        ("mlflow.db", "a model holds the champion alias", 2, verdict, level == 2),
        ("mlflow.db", "models in the registry", 1, "passed: registered: churn", True),
    ]
    assert area(report, "model_registry")["level"] == level
    assert evidence(report, "experiment_tracking") == [
        (
            "mlflow.db",
            "runs logged parameters and metrics",
            2,
            "passed: 1 run with parameters and metrics",
            True,
        )
    ]


@pytest.mark.usefixtures("checkers")
def test_a_prometheus_rule_manifest_is_checked_by_its_spec(tmp_path: Path):
    manifest = (
        "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: model\n"
        "spec:\n  groups:\n    - name: model\n      rules:\n        - alert: Down\n          expr: up == 0\n"
    )
    repo = adopt_fixtures.commit(tmp_path / "svc", {"deploy/rules.yaml": manifest})
    report = assess(repo)
    assert evidence(report, "monitoring")[0] == (
        "deploy/rules.yaml",
        "alerting rules",
        2,
        "passed: promtool check rules (the PrometheusRule's spec)",
        True,
    )
