"""A generated project really works: its lint, its tests, its DVC pipeline, MLflow and the gate.

One project per task type (a module-scoped fixture renders it and runs `make setup`); every
command runs the project's own tools from its .venv, as a developer or CI would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import REAL_CACHES, ROOT

from mlopsify import TemplateSource, new_project

pytestmark = pytest.mark.slow

COPIER = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))
TASK_TYPES = list(COPIER["task_type"]["choices"].values())
TIMINGS: dict[str, float] = {}

# Reads the registry of the project's MLflow database with the project's own MLflow.
REGISTRY_PROBE = """
import json, sys
from mlflow import MlflowClient
client = MlflowClient("sqlite:///mlflow.db")
name, alias = sys.argv[1], sys.argv[2]
versions = client.search_model_versions(f"name = '{name}'")
try:
    champion = str(client.get_model_version_by_alias(name, alias).version)
except Exception:
    champion = None
print(json.dumps({
    "versions": sorted(int(v.version) for v in versions),
    "champion": champion,
    "gate_tags": {str(v.version): v.tags.get("quality_gate") for v in versions},
}))
"""


@dataclass(frozen=True)
class Project:
    path: Path
    task_type: str
    home: Path

    @classmethod
    def create(
        cls,
        tmp_path_factory: pytest.TempPathFactory,
        template_dir: Path,
        directory: str,
        data: dict[str, Any],
    ) -> Project:
        """A fresh project rendered and committed in a home of its own, `make setup` not run."""
        label = directory.replace("/", "-")
        home = tmp_path_factory.mktemp(f"home-{label}")
        (home / ".gitconfig").write_text(
            "[user]\n\tname = Test User\n\temail = test@example.com\n"
            "[init]\n\tdefaultBranch = main\n"
        )
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("HOME", str(home))
            patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
            path = new_project(
                tmp_path_factory.mktemp(label) / directory,
                data=data,
                defaults=True,
                template=TemplateSource.at(template_dir),
            )
        return cls(path=path, task_type=data.get("task_type", "classification"), home=home)

    @property
    def name(self) -> str:
        return self.path.name

    def env(self) -> dict[str, str]:
        """The environment of a developer with the project's .venv active and default MLflow."""
        env = {
            k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "VIRTUAL_ENV"}
        }
        env.update(REAL_CACHES)
        env.update(HOME=str(self.home), GIT_CONFIG_NOSYSTEM="1")
        env["PATH"] = f"{self.path / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
        return env

    def run(
        self, *args: str, check: bool = True, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(
            list(args),
            cwd=cwd or self.path,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=900,
        )
        if check and completed.returncode != 0:
            pytest.fail(
                f"{' '.join(args)} exited {completed.returncode} in {self.path}\n"
                f"--- stdout\n{completed.stdout[-6000:]}\n--- stderr\n{completed.stderr[-6000:]}"
            )
        return completed

    def timed(self, label: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        start = time.monotonic()
        completed = self.run(*args, check=check)
        TIMINGS[f"{self.task_type}: {label}"] = round(time.monotonic() - start, 1)
        return completed

    def registry(self) -> dict[str, object]:
        params = yaml.safe_load((self.path / "params.yaml").read_text(encoding="utf-8"))
        probe = self.run(
            str(self.path / ".venv" / "bin" / "python"),
            "-c",
            REGISTRY_PROBE,
            params["mlflow"]["model_name"],
            params["mlflow"]["alias"],
        )
        result: dict[str, object] = json.loads(probe.stdout.strip().splitlines()[-1])
        return result

    def git_status(self) -> str:
        return self.run("git", "status", "--porcelain").stdout


@pytest.fixture(scope="module", params=TASK_TYPES)
def project(
    request: pytest.FixtureRequest, template_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Project:
    """A fresh project of one task type, rendered and committed, with `make setup` done."""
    task_type: str = request.param
    created = Project.create(
        tmp_path_factory, template_dir, f"demo-{task_type[:5]}", {"task_type": task_type}
    )
    created.timed("make setup", "make", "setup")
    return created


@pytest.fixture(scope="module", autouse=True)
def report_timings() -> object:
    yield
    for label, seconds in sorted(TIMINGS.items()):
        print(f"\n{label}: {seconds} s", end="")


def test_lint_changes_nothing(project: Project) -> None:
    before = project.git_status()
    lint = project.run("make", "lint")
    assert "All checks passed!" in lint.stdout
    assert "already formatted" in lint.stdout
    assert re.search(r"^Success: no issues found in \d+ source files$", lint.stdout, re.M)
    assert project.git_status() == before
    assert project.run("git", "diff", "--quiet", check=False).returncode == 0


def test_generated_tests_pass(project: Project) -> None:
    result = project.timed("make test", "make", "test")
    assert " passed" in result.stdout
    assert " failed" not in result.stdout


def raise_first_minimum(params_file: Path) -> str:
    """Set the first gate minimum out of reach, and change the model so that train runs again."""
    params = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    metric = next(iter(params["gate"]["min"]))
    params["gate"]["min"][metric] = 1.01
    key = "C" if "C" in params["model"] else "alpha"
    params["model"][key] = params["model"][key] * 2
    params_file.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return metric


def test_pipeline_registers_promotes_and_gates(project: Project) -> None:
    name = yaml.safe_load((project.path / "params.yaml").read_text(encoding="utf-8"))["mlflow"][
        "model_name"
    ]

    cold = project.timed("cold dvc repro", "dvc", "repro")
    for stage in ("ingest", "validate", "features", "train", "evaluate"):
        assert f"Running stage '{stage}'" in cold.stdout
    assert "quality gate passed" in cold.stdout
    assert (project.path / "models" / "model" / "MLmodel").is_file()
    features = json.loads((project.path / "models" / "features.json").read_text(encoding="utf-8"))
    assert features["target"] == "target"
    assert features["task_type"] == project.task_type
    metrics = json.loads((project.path / "metrics" / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics) == (
        {"accuracy", "f1", "roc_auc"}
        if project.task_type == "classification"
        else {"r2", "rmse", "mae"}
    )
    assert project.registry() == {"versions": [1], "champion": "1", "gate_tags": {"1": "passed"}}

    # The default remote is a directory beside the project, written relative to .dvc/ in its config.
    pushed = project.run("dvc", "push")
    storage = project.path.parent / f"{project.name}-dvc-storage"
    assert "pushed" in pushed.stdout, pushed.stdout
    assert any(path.is_file() for path in storage.rglob("*")), f"nothing pushed to {storage}"

    noop = project.timed("no-op dvc repro", "dvc", "repro")
    assert "Data and pipelines are up to date." in noop.stdout
    assert "Running stage" not in noop.stdout

    metric = raise_first_minimum(project.path / "params.yaml")
    failed = project.timed("dvc repro with the gate too high", "dvc", "repro", check=False)
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0, output
    assert "Running stage 'train'" in output
    assert f"quality gate failed for {name} version 2:" in output
    assert f"is below the minimum 1.01 (params.yaml gate.min.{metric})" in output
    assert "alias 'champion' stays on version 1" in output
    assert project.registry() == {
        "versions": [1, 2],
        "champion": "1",
        "gate_tags": {"1": "passed", "2": "failed"},
    }
    project.run("git", "checkout", "--", "params.yaml")


def test_detect_secrets_hook_refuses_a_committed_credential(
    project: Project, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    project.run("git", "clone", "--quiet", str(project.path), str(clone))
    project.run(str(project.path / ".venv" / "bin" / "pre-commit"), "install", cwd=clone)
    (clone / "settings.py").write_text(
        'AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"\n'
    )
    project.run("git", "add", "settings.py", cwd=clone)
    head = project.run("git", "rev-parse", "HEAD", cwd=clone).stdout

    commit = project.run("git", "commit", "-m", "add settings", check=False, cwd=clone)

    output = commit.stdout + commit.stderr
    assert commit.returncode != 0, output
    assert "ERROR: Potential secrets about to be committed to git repo!" in output
    assert "Location:    settings.py:1" in output
    assert project.run("git", "rev-parse", "HEAD", cwd=clone).stdout == head


def test_lint_type_checks_the_code(project: Project, tmp_path: Path) -> None:
    """mypy runs in `make lint`, strict: a function that returns the wrong type fails it."""
    clone = tmp_path / "clone"
    project.run("git", "clone", "--quiet", str(project.path), str(clone))
    package = next((clone / "src").iterdir()).name
    (clone / "src" / package / "units.py").write_text(
        '"""Units."""\n\n\ndef doubled(count: int) -> int:\n    return str(count * 2)\n'
    )
    lint = project.run("make", "lint", f"VENV={project.path / '.venv'}", cwd=clone, check=False)
    assert lint.returncode != 0
    assert (
        f'src/{package}/units.py:5: error: Incompatible return value type (got "str", '
        'expected "int")  [return-value]'
    ) in lint.stdout
