"""Kubeflow and Airflow projects really run: setup with the orchestrator's extra, its tools' checks, `make test`.

One project per orchestrator (module-scoped), rendered and committed, with `make setup`. The
full local orchestrated run (train, gate, register, batch inference) is the runtime's, tested
in mlopsify's suite (tests/runtime/test_orchestration.py); here the project's tools and tests
run with the orchestrator's extra. The timings go to docs/benchmarks.md.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
import yaml
from helpers import REAL_CACHES, ROOT, run

from mlopsify import TemplateSource, new_project

pytestmark = pytest.mark.slow

COPIER = yaml.safe_load((ROOT / "copier.yml").read_text(encoding="utf-8"))
ORCHESTRATORS = [value for value in COPIER["orchestrator"]["choices"].values() if value != "dvc"]
TIMINGS: dict[str, float] = {}


def project_env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "VIRTUAL_ENV"}}
    env.update(REAL_CACHES)
    env["PATH"] = f"{project / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    return env


def timed(label: str, project: Path, *args: str) -> str:
    start = time.monotonic()
    done = run(*args, cwd=project, env=project_env(project), timeout=1800)
    TIMINGS[label] = round(time.monotonic() - start, 1)
    return done.stdout


@pytest.fixture(scope="module", params=ORCHESTRATORS)
def project(
    request: pytest.FixtureRequest, template_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    orchestrator: str = request.param
    path = new_project(
        tmp_path_factory.mktemp(orchestrator) / f"demo-{orchestrator}",
        data={"orchestrator": orchestrator},
        defaults=True,
        template=TemplateSource.at(template_dir),
    )
    timed(f"{orchestrator}: make setup (with the {orchestrator} extra)", path, "make", "setup")
    return path


@pytest.fixture(scope="module", autouse=True)
def report_timings() -> object:
    yield
    for label, seconds in sorted(TIMINGS.items()):
        print(f"\n{label}: {seconds} s", end="")


def orchestrator_of(project: Path) -> str:
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))
    return str(answers["orchestrator"])


def test_only_the_chosen_orchestrator_is_installed(project: Path) -> None:
    chosen = orchestrator_of(project)
    python = str(project / ".venv" / "bin" / "python")
    probe = (
        "import importlib.util as u; print(bool(u.find_spec('kfp')), bool(u.find_spec('airflow')))"
    )
    found = run(python, "-c", probe, cwd=project).stdout.split()
    assert found == [str(chosen == "kubeflow"), str(chosen == "airflow")]


def test_the_orchestrators_own_tools_accept_the_pipeline(project: Path) -> None:
    chosen = orchestrator_of(project)
    if chosen == "kubeflow":
        out = timed("kubeflow: make pipeline-compile", project, "make", "pipeline-compile")
        assert "kubeflow: compiled build/kubeflow/pipeline.yaml" in out
        spec = yaml.safe_load(
            (project / "build" / "kubeflow" / "pipeline.yaml").read_text(encoding="utf-8")
        )
        assert spec["pipelineInfo"]["name"] == project.name
        upload = run("make", "pipeline-upload", cwd=project, env=project_env(project), check=False)
        assert upload.returncode == 2
        assert (
            upload.stderr.splitlines().count(
                "KFP_ENDPOINT is not set: give the Kubeflow Pipelines API URL (docs/orchestration.md)"
            )
            == 1
        )
    else:
        out = timed("airflow: make dag-check", project, "make", "dag-check")
        assert "No data found" in out
        (project / "dags" / "broken.py").write_text(
            "from airflow.sdk import DAG\nDAG(\n", encoding="utf-8"
        )
        broken = run("make", "dag-check", cwd=project, env=project_env(project), check=False)
        (project / "dags" / "broken.py").unlink()
        assert broken.returncode != 0
        assert "the DAG in dags/ has import errors (above)" in broken.stderr
        ship = run("make", "dag-ship", cwd=project, env=project_env(project), check=False)
        assert ship.returncode == 2
        assert (
            ship.stderr.splitlines().count(
                "AIRFLOW_DAGS_BUCKET is not set: give the DAG bucket URL,"
                " or git-sync the repository (docs/orchestration.md)"
            )
            == 1
        )


def test_generated_tests_pass_with_an_orchestrated_run(project: Path) -> None:
    chosen = orchestrator_of(project)
    out = timed(f"{chosen}: make test", project, "make", "test")
    # the project's own tests; the orchestration graph and a local Kubeflow run are the
    # runtime's, tested in mlopsify's suite (tests/runtime/test_orchestration.py)
    assert "tests/test_train.py" in out and "tests/test_model_quality.py" in out
    # pytest's closing line (make may print its directory after it when run from another make)
    summary = [line for line in out.splitlines() if re.search(r"\d+ (passed|failed)", line)][-1]
    assert " passed" in summary and "failed" not in summary
    # The one test that may skip: the OpenAPI snapshot, which `make pipeline` writes and this
    # project (orchestrated runs only) has not run.
    skipped = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert all("no docs/openapi.json yet" in line for line in skipped), skipped
