"""`mlopsify assess`: levels from files, the commands that close gaps, and a stable JSON form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import ROOT, require_tool, run
from template_repos import TemplateRepo, git, mlops_files
from typer.testing import CliRunner

from mlopsify import RepositoryStateError, TemplateSource, new_project
from mlopsify.assessment import AREAS, SCHEMA_VERSION, assess_repository
from mlopsify.cli import app

runner = CliRunner()

JENKINS_REPO = {
    "README.md": "# Scoring\n",
    "Jenkinsfile": "pipeline { agent any; stages { stage('test') { steps { sh 'pytest' } } } }\n",
    "tests/test_score.py": "def test_score() -> None:\n    assert True\n",
    "Dockerfile": "FROM python:3.11-slim\nUSER 1000\n",
    "k8s/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\n",
    "data/train.csv.dvc": "outs:\n- path: train.csv\n",
    ".dvc/config": "[core]\n    remote = store\n['remote \"store\"']\n    url = /srv/dvc\n",
    "train.py": "import mlflow\n",
    "SECURITY.md": "# Reporting vulnerabilities\n",
    ".venv/lib/site.py": "import wandb\nwandb.log({})\n",  # tool directories are not evidence
}


def write_repository(root: Path, files: dict[str, str], *, git_init: bool = True) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    if git_init:  # assess reads the commit at HEAD
        git("init", "--quiet", "--initial-branch=main", cwd=root)
        git("add", "--all", cwd=root)
        git("commit", "--quiet", "--no-verify", "-m", "their code", cwd=root)
    return root


def area(
    key: str, level: int, evidence: list[tuple[str, str, int, str]], commands: list[str]
) -> dict:
    """An area of the report; each evidence is (path, finding, level, check): earned if passed."""
    spec = next(a for a in AREAS if a.key == key)
    return {
        "id": key,
        "title": spec.title,
        "level": level,
        "level_name": ["none", "partial", "managed"][level],
        "evidence": [
            {"path": p, "finding": f, "level": n, "check": c, "earned": c.startswith("passed: ")}
            for p, f, n, c in evidence
        ],
        "next_step": None if level == 2 else spec.goal,
        "commands": commands,
    }


JENKINS_OK = "passed: declarative structure (pipeline, agent, stages, steps)"
NOT_RUN = "not checked: the tests were not run (assess --run runs them)"


def jenkins_report(root: Path, *, tests: dict, score: int, tests_run: bool = False) -> dict:
    head = git("rev-parse", "--short", "HEAD", cwd=root)
    return {
        "schema_version": SCHEMA_VERSION,
        "path": str(root),
        "mlopsify_project": False,
        "template_version": None,
        "committed_only": True,
        "tests_run": tests_run,
        "score": score,
        "max_score": 26,
        "areas": [
            area(
                "version_control",
                1,
                [(".git", "a git repository", 1, f"passed: HEAD is {head}")],
                ["mlopsify adopt"],
            ),
            area(
                "ci_cd",
                1,
                [("Jenkinsfile", "Jenkins pipeline", 1, JENKINS_OK)],
                ["mlopsify adopt --data ci_provider=jenkins"],
            ),
            tests,
            area(
                "containers",
                2,
                [
                    (
                        "Dockerfile",
                        "image runs as a non-root user",
                        2,
                        "passed: the service's image runs as 1000",
                    ),
                    ("Dockerfile", "container build", 1, "passed: the service's image"),
                ],
                [],
            ),
            area(
                "deployment",
                1,
                [("k8s/deployment.yaml", "Kubernetes manifests", 1, "passed: Deployment")],
                ["mlopsify adopt"],
            ),
            area(
                "data_versioning",
                2,
                [
                    (".dvc/config", "DVC remote configured", 2, "passed: remotes: store"),
                    (".dvc", "a DVC repository", 1, "passed: remotes: store"),
                    ("data/train.csv.dvc", "data tracked by DVC", 1, "passed: tracks train.csv"),
                ],
                [],
            ),
            area("data_validation", 0, [], ["mlopsify adopt"]),
            area(
                "experiment_tracking",
                1,
                [("train.py", "experiment tracking library", 1, "passed: parses as Python")],
                ["mlopsify adopt"],
            ),
            area("model_registry", 0, [], ["mlopsify adopt"]),
            area("model_validation", 0, [], ["mlopsify adopt"]),
            area("monitoring", 0, [], ["mlopsify adopt"]),
            area(
                "security_compliance",
                1,
                [("SECURITY.md", "security policy or scanning", 1, "passed: committed")],
                ["mlopsify adopt --data compliance=gdpr"],
            ),
            area(
                "docs_ownership",
                1,
                [("README.md", "documentation", 1, "passed: committed")],
                ["mlopsify adopt"],
            ),
        ],
    }


def test_json_of_a_devops_repository_field_by_field(tmp_path: Path):
    root = write_repository(tmp_path / "scoring", JENKINS_REPO)
    report = assess_repository(root).to_json()
    # Without --run the tests are read, not run: the Jenkinsfile runs pytest, yet the tests
    # area stays partial.
    tests = area(
        "tests",
        1,
        [
            ("Jenkinsfile", "CI runs the tests", 2, JENKINS_OK),
            ("tests", "the tests pass", 2, NOT_RUN),
            (
                "tests/test_score.py",
                "tests",
                1,
                "passed: 1 test function parses (assess --run collects and runs them)",
            ),
        ],
        ["mlopsify adopt"],
    )
    assert report == jenkins_report(root, tests=tests, score=11)


def test_run_collects_and_runs_the_tests(tmp_path: Path):
    root = write_repository(tmp_path / "scoring", JENKINS_REPO)
    report = assess_repository(root, run_tests=True).to_json()
    tests = area(
        "tests",
        2,
        [
            ("Jenkinsfile", "CI runs the tests", 2, JENKINS_OK),
            ("tests", "the tests pass", 2, "passed: pytest: 1 passed"),
            ("tests/test_score.py", "tests", 1, "passed: pytest --collect-only: 1 test collected"),
        ],
        [],
    )
    assert report == jenkins_report(root, tests=tests, score=12, tests_run=True)


def test_empty_directory_is_level_zero_everywhere(tmp_path: Path):
    report = assess_repository(tmp_path).to_json()
    assert report["score"] == 0
    assert [a["id"] for a in report["areas"]] == [a.key for a in AREAS]
    assert all(a["level"] == 0 and a["evidence"] == [] for a in report["areas"])
    # Not a git repository: adopt would refuse it, so no command suggests adopt.
    assert all(a["commands"] == [] for a in report["areas"])


def test_a_level_needs_the_levels_below(tmp_path: Path):
    # Hooks configured but no repository; CI that runs pytest but no tests.
    root = write_repository(
        tmp_path / "r",
        {".pre-commit-config.yaml": "repos: []\n", ".gitlab-ci.yml": "t:\n  script: pytest\n"},
        git_init=False,
    )
    levels = {a.key: a.level for a in assess_repository(root).areas}
    assert levels["version_control"] == 0
    assert levels["tests"] == 0
    assert levels["ci_cd"] == 1


def test_a_generated_project_gets_add_commands_for_what_is_off(tmp_path: Path):
    for checker in ("check-jsonschema", "kubectl"):  # the evidence's checks
        require_tool(checker)
    template = TemplateRepo(tmp_path / "template")
    template.release("v1", mlops_files((ROOT / "copier.yml").read_text()))
    project = new_project(
        tmp_path / "churn",
        data={"use_monitoring": False},
        defaults=True,
        template=TemplateSource.at(template.path),
    )
    report = assess_repository(project).to_json()
    assert report["mlopsify_project"] is True
    assert report["template_version"] == "v1"
    by_id = {a["id"]: a for a in report["areas"]}
    assert by_id["monitoring"]["level"] == 0
    assert by_id["monitoring"]["commands"] == ["mlopsify add monitoring"]
    assert by_id["security_compliance"]["level"] == 1
    # compliance: none is the team's answer (no regulated data): no regulation is pushed on it.
    assert by_id["security_compliance"]["commands"] == []
    managed = {key for key, a in by_id.items() if a["level"] == 2}
    assert managed == {
        "version_control",
        "ci_cd",
        "containers",
        "data_versioning",
        "data_validation",
        "model_validation",
        "docs_ownership",
    }
    assert all(by_id[key]["commands"] == [] for key in managed)

    # Files are not behaviour: the tests have not run, no run is tracked, no model holds the
    # alias, and this small template's overlay does not build (its base has no kustomization).
    def level_two(key: str) -> list[tuple[str, str]]:
        return [(e["path"], e["check"]) for e in by_id[key]["evidence"] if e["level"] == 2]

    assert level_two("tests") == [
        (".gitlab-ci.yml", "passed: check-jsonschema vendor.gitlab-ci"),
        ("tests", "not checked: the tests were not run (assess --run runs them)"),
    ]
    [(overlay, built)] = level_two("deployment")
    assert overlay == "deploy/k8s/overlays/prod/kustomization.yaml"
    assert built.startswith("failed: kubectl kustomize deploy/k8s/overlays/prod: ")
    assert "unable to find one of 'kustomization.yaml'" in built
    assert level_two("experiment_tracking") == level_two("model_registry") == []
    assert {
        by_id[key]["level"]
        for key in ("tests", "deployment", "experiment_tracking", "model_registry")
    } == {1}


def test_not_a_directory_is_refused(tmp_path: Path):
    with pytest.raises(RepositoryStateError) as raised:
        assess_repository(tmp_path / "missing")
    assert str(raised.value) == (
        f"{tmp_path / 'missing'} is not a directory: give the path of a repository"
    )


# ------------------------------------------------------------------ the command line


def test_cli_assess_json_is_the_documented_document(tmp_path: Path):
    root = write_repository(tmp_path / "scoring", JENKINS_REPO)
    result = runner.invoke(app, ["assess", str(root), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == assess_repository(root).to_json()


def test_cli_assess_table(tmp_path: Path):
    root = write_repository(tmp_path / "scoring", JENKINS_REPO)
    result = runner.invoke(app, ["assess", str(root)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"MLOps maturity of {root} (not made with mlopsify): 11/26"
    assert lines[1].split() == ["area", "level", "evidence", "next"]
    assert lines[3].split() == [
        "CI/CD",
        "1",
        "partial",
        "Jenkinsfile",
        "mlopsify",
        "adopt",
        "--data",
        "ci_provider=jenkins",
    ]
    # Not run (no --run): the tests are partial, whatever CI says it runs.
    assert lines[4].split() == ["Tests", "1", "partial", "tests/test_score.py", "mlopsify", "adopt"]
    assert len(lines) == 2 + len(AREAS)


def test_cli_assess_missing_path_exits_5(tmp_path: Path):
    result = runner.invoke(app, ["assess", str(tmp_path / "nowhere")])
    assert result.exit_code == 5
    assert result.stderr == (
        f"error: {tmp_path / 'nowhere'} is not a directory: give the path of a repository\n"
    )


def test_cli_assess_json_validates_against_the_published_schema(tmp_path: Path):
    checker = require_tool("check-jsonschema")
    root = write_repository(tmp_path / "scoring", JENKINS_REPO)
    result = runner.invoke(app, ["assess", str(root), "--json"])
    report = tmp_path / "report.json"
    report.write_text(result.stdout)
    run(checker, "--schemafile", ROOT / "docs" / "assess.schema.json", report, cwd=tmp_path)
    # And the schema rejects a document of another shape.
    broken = json.loads(result.stdout)
    broken["areas"][0]["level"] = 3
    report.write_text(json.dumps(broken))
    rejected = run(
        checker,
        "--schemafile",
        ROOT / "docs" / "assess.schema.json",
        report,
        cwd=tmp_path,
        check=False,
    )
    assert rejected.returncode == 1
