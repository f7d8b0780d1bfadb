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
    if git_init:
        git("init", "--quiet", "--initial-branch=main", cwd=root)
    return root


def area(key: str, level: int, evidence: list[tuple[str, str, int]], commands: list[str]) -> dict:
    spec = next(a for a in AREAS if a.key == key)
    return {
        "id": key,
        "title": spec.title,
        "level": level,
        "level_name": ["none", "partial", "managed"][level],
        "evidence": [{"path": p, "finding": f, "level": n} for p, f, n in evidence],
        "next_step": None if level == 2 else spec.goal,
        "commands": commands,
    }


def test_json_of_a_devops_repository_field_by_field(tmp_path: Path):
    root = write_repository(tmp_path / "scoring", JENKINS_REPO)
    report = assess_repository(root).to_json()
    assert report == {
        "schema_version": SCHEMA_VERSION,
        "path": str(root),
        "mlopsify_project": False,
        "template_version": None,
        "score": 12,
        "max_score": 26,
        "areas": [
            area("version_control", 1, [(".git", "a git repository", 1)], ["mlopsify adopt"]),
            area(
                "ci_cd",
                1,
                [("Jenkinsfile", "Jenkins pipeline", 1)],
                ["mlopsify adopt --data ci_provider=jenkins"],
            ),
            area(
                "tests",
                2,
                [("Jenkinsfile", "CI runs the tests", 2), ("tests/test_score.py", "tests", 1)],
                [],
            ),
            area(
                "containers",
                2,
                [
                    ("Dockerfile", "image runs as a non-root user", 2),
                    ("Dockerfile", "container build", 1),
                ],
                [],
            ),
            area(
                "deployment",
                1,
                [("k8s/deployment.yaml", "Kubernetes manifests", 1)],
                ["mlopsify adopt"],
            ),
            area(
                "data_versioning",
                2,
                [
                    (".dvc/config", "DVC remote configured", 2),
                    (".dvc", "data tracked by DVC", 1),
                    ("data/train.csv.dvc", "data tracked by DVC", 1),
                ],
                [],
            ),
            area("data_validation", 0, [], ["mlopsify adopt"]),
            area(
                "experiment_tracking",
                1,
                [("train.py", "experiment tracking library", 1)],
                ["mlopsify adopt"],
            ),
            area("model_registry", 0, [], ["mlopsify adopt"]),
            area("model_validation", 0, [], ["mlopsify adopt"]),
            area("monitoring", 0, [], ["mlopsify adopt"]),
            area(
                "security_compliance",
                1,
                [("SECURITY.md", "security policy or scanning", 1)],
                ["mlopsify adopt --data compliance=gdpr"],
            ),
            area("docs_ownership", 1, [("README.md", "documentation", 1)], ["mlopsify adopt"]),
        ],
    }


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
        "tests",
        "containers",
        "deployment",
        "data_versioning",
        "data_validation",
        "experiment_tracking",
        "model_registry",
        "model_validation",
        "docs_ownership",
    }
    assert all(by_id[key]["commands"] == [] for key in managed)


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
    assert lines[0] == f"MLOps maturity of {root} (not made with mlopsify): 12/26"
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
    assert lines[4].split() == ["Tests", "2", "managed", "Jenkinsfile", "-"]
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
