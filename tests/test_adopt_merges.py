"""adopt on three repositories shaped like public ones (adopt_fixtures.py): what it merges into
their own files, what it stages, and where it stops. Run through the real CLI against the
working tree's template (as the next release)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import adopt_fixtures
import pytest
import yaml
from template_releases import next_release, shipped_is_next_release  # noqa: F401 (fixtures)
from template_repos import git
from typer.testing import CliRunner

from mlopsify.adoption_merges import IGNORE_HEADER, import_siblings_relatively
from mlopsify.cli import app

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("shipped_is_next_release")
DEPENDENCY_NOTE = (
    "not taken over: the template's environment is pyproject.toml (make setup); add what your"
    " code needs to its dependencies"
)


def adopt(path: Path, *data: str) -> Any:
    args = ["adopt", str(path), "--defaults", *(arg for pair in data for arg in ("--data", pair))]
    return runner.invoke(app, args)


def template_ignore_lines() -> list[str]:
    text = (Path(__file__).parent.parent / "template" / ".gitignore.jinja").read_text()
    # the default answers (Kubernetes, monitoring) keep every line its Jinja tags guard
    return [line for line in text.splitlines() if line.strip() and not line.startswith(("#", "{%"))]


def test_service_gitignore_gains_the_template_lines_and_every_proposal_is_staged(tmp_path: Path):
    repo = adopt_fixtures.service(tmp_path / "shop")
    result = adopt(repo, "ci_provider=github")
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    missing = [line for line in template_ignore_lines() if line != "__pycache__/"]
    assert (repo / ".gitignore").read_text() == (
        adopt_fixtures.SERVICE_GITIGNORE
        + f"\n{IGNORE_HEADER}\n"
        + "".join(f"{m}\n" for m in missing)
    )
    assert f"  merged    .gitignore  (added {', '.join(missing)})" in out
    assert f"note: your dependency file requirements.txt was {DEPENDENCY_NOTE}" in out
    # Their workflow is kept; the template's waits beside it, staged like everything else.
    assert (
        "  kept      .github/workflows/ci.yml  (template version in .github/workflows/ci.yml.mlopsify)"
        in out
    )
    untracked = git("status", "--porcelain", "--untracked-files=all", cwd=repo).splitlines()
    assert [line for line in untracked if not line.startswith(("A ", "M "))] == []
    assert "A  .github/workflows/ci.yml.mlopsify" in untracked
    assert "M  .gitignore" in untracked
    # What the pipeline writes stays out of `git add -A` once adopted.
    git("commit", "--quiet", "--no-verify", "-m", "adopt", cwd=repo)
    for written in (
        "mlflow.db",
        "models/model/model.pkl",
        "build/lib/x.py",
        "data/raw/dataset.csv",
    ):
        (repo / written).parent.mkdir(parents=True, exist_ok=True)
        (repo / written).write_text("output\n")
    git("add", "-A", cwd=repo)
    assert git("status", "--porcelain", cwd=repo) == ""


def test_a_held_workflow_proposal_is_staged_and_reset_hard_takes_back_all_of_adopt(tmp_path: Path):
    repo = adopt_fixtures.service(tmp_path / "shop")
    git("rm", "--quiet", ".github/workflows/ci.yml", cwd=repo)  # only their deploy.yml is left
    git("commit", "--quiet", "--no-verify", "-m", "no ci", cwd=repo)
    result = adopt(repo, "ci_provider=github", "use_kubernetes=true")
    assert result.exit_code == 0, result.output
    assert (
        "  proposed  .github/workflows/ci.yml.mlopsify  (it calls .github/workflows/deploy.yml as a"
        " reusable workflow, and yours has no workflow_call trigger)"
    ) in result.stdout.splitlines()
    status = git("status", "--porcelain", "--untracked-files=all", cwd=repo).splitlines()
    assert "A  .github/workflows/ci.yml.mlopsify" in status
    assert [line for line in status if not line.startswith(("A ", "M "))] == []
    git("reset", "--quiet", "--hard", cwd=repo)
    assert git("status", "--porcelain", "--untracked-files=all", cwd=repo) == ""
    assert (repo / ".gitignore").read_text() == adopt_fixtures.SERVICE_GITIGNORE
    again = adopt(repo, "ci_provider=github", "use_kubernetes=true")
    assert again.exit_code == 0, again.output


def load_template_params(repo: Path, package: str) -> Any:
    """The runtime's own reading of the merged params.yaml (what every pipeline step calls)."""
    from mlopsify_runtime.config import load_params

    return load_params(repo / "params.yaml")


def test_ml_service_params_and_pipeline_gain_what_the_template_reads(tmp_path: Path):
    repo = adopt_fixtures.ml_service(tmp_path / "churn")
    result = adopt(repo)
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert (
        "  merged    params.yaml  (added task_type, model, gate, compiled, slices, robustness, tune, mlflow,"
        " monitoring, data.source, data.target, data.id_column, data.features, data.random_state)"
    ) in out
    assert (
        "  merged    dvc.yaml  (added stages.ingest, stages.validate, stages.features,"
        " stages.train, stages.evaluate, stages.reference)"
    ) in out
    assert f"note: your dependency file setup.py was {DEPENDENCY_NOTE}" in out
    # Their lines, comments and values first and unchanged; the template's code reads the rest.
    params = (repo / "params.yaml").read_text()
    assert params.startswith(
        "# our training settings\ntrain:\n  epochs: 10  # enough for the toy data\n"
        "data:\n  test_size: 0.3\n  source: breast_cancer\n  target: target  # the label column\n"
    )
    loaded = load_template_params(repo, "churn")
    assert (loaded.task_type, loaded.data.test_size, loaded.data.source) == (
        "classification",
        0.3,
        "breast_cancer",
    )
    assert yaml.safe_load(params)["train"] == {"epochs": 10}
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    assert (repo / "dvc.yaml").read_text().startswith(adopt_fixtures.ML_DVC)
    assert list(stages) == [
        "prepare",
        "fit",
        "ingest",
        "validate",
        "features",
        "train",
        "evaluate",
        "reference",
    ]
    assert git("status", "--porcelain", "--", "params.yaml", "dvc.yaml", cwd=repo).splitlines() == [
        "M  dvc.yaml",
        "M  params.yaml",
    ]
    lint = subprocess.run(
        [
            Path(sys.executable).parent / "yamllint",
            "-c",
            ".yamllint.yaml",
            "-s",
            "params.yaml",
            "dvc.yaml",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout


@pytest.mark.parametrize(
    ("params", "pipeline", "message"),
    [
        (
            "model:\n  n_estimators: 100\n",
            adopt_fixtures.ML_DVC,
            "params.yaml lacks keys the template's code needs, and adopt cannot add them: model (yours"
            " has keys the template's code does not know: n_estimators): rename yours, then adopt"
            " again; nothing was written",
        ),
        (
            "task_type:\n  - classification\n",
            adopt_fixtures.ML_DVC,
            "params.yaml lacks keys the template's code needs, and adopt cannot add them: task_type (a"
            " single value in the template; yours is a list): rename yours, then adopt again;"
            " nothing was written",
        ),
        (
            adopt_fixtures.ML_PARAMS,
            "stages:\n  train:\n    cmd: python fit.py\n",
            "dvc.yaml lacks stages the template's code needs, and adopt cannot add them: stages train"
            " (yours have the same names and do other things): rename yours, then adopt again;"
            " nothing was written",
        ),
        (
            adopt_fixtures.ML_PARAMS,
            "stages:\n  download:\n    cmd: python get.py\n    outs:\n      - data/raw/dataset.csv\n",
            "dvc.yaml lacks stages the template's code needs, and adopt cannot add them: stages that"
            " write data/raw/dataset.csv (one of yours writes it too): rename yours, then adopt"
            " again; nothing was written",
        ),
    ],
)
def test_adopt_stops_where_the_template_code_cannot_use_their_file(
    tmp_path: Path, params: str, pipeline: str, message: str
):
    repo = adopt_fixtures.ml_service(tmp_path / "churn", params=params, pipeline=pipeline)
    result = adopt(repo)
    assert result.exit_code == 5, result.output
    assert result.stderr == f"error: {message}\n"
    assert git("status", "--porcelain", "--untracked-files=all", cwd=repo) == ""


def test_template_tests_import_no_sibling_in_a_tests_package(tmp_path: Path):
    """0.4.0's tests import no sibling test module (the serving tests that did are the runtime's
    now), so a repository whose tests/ is a package needs no adaptation; 0.3.0's still get it
    (import_siblings_relatively, below)."""
    repo = adopt_fixtures.ml_service(tmp_path / "churn")
    result = adopt(repo)
    assert result.exit_code == 0, result.output
    assert not [line for line in result.stdout.splitlines() if line.startswith("  adapted")]
    for test in (repo / "tests").glob("test_*.py"):
        assert not re.search(r"^from test_\w+ import", test.read_text(), re.M), test.name


def test_relative_sibling_imports_collect_in_a_package_and_absolute_ones_do_not(tmp_path: Path):
    """The failure the adaptation removes, with pytest itself: a tests package of two modules."""
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "__init__.py").write_text("")
    (tests / "test_serving.py").write_text(
        "TOKEN = 'x'\n\n\ndef test_token() -> None:\n    assert TOKEN\n"
    )
    contract = "import os\n\nfrom test_serving import TOKEN\n\n\ndef test_contract() -> None:\n    assert TOKEN\n"
    (tests / "test_contract.py").write_text(contract)
    pytest_run = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
    broken = subprocess.run(pytest_run, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert broken.returncode == 2
    assert "ModuleNotFoundError: No module named 'test_serving'" in broken.stdout
    adapted = import_siblings_relatively(contract)
    assert adapted == (
        "import os\n\nfrom .test_serving import TOKEN\n\n\ndef test_contract() -> None:\n    assert TOKEN\n"
    )
    (tests / "test_contract.py").write_text(adapted)
    fixed = subprocess.run(pytest_run, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert fixed.returncode == 0, fixed.stdout
    assert "2 passed" in fixed.stdout


def test_notebook_repository_names_its_requirements(tmp_path: Path):
    repo = adopt_fixtures.notebooks(tmp_path / "explore")
    result = adopt(repo)
    assert result.exit_code == 0, result.output
    assert (
        f"note: your dependency file requirements.txt was {DEPENDENCY_NOTE}"
        in result.stdout.splitlines()
    )
