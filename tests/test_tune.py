"""`make tune` in a generated project, run for real: DVC experiments in two workers, MLflow on SQLite.

One project: `make pipeline` trains the champion (C = 1.0); a grid of two tiny regularisation
constants runs as two queued DVC experiments in parallel, each training run tagged with its
experiment in MLflow; the better of the two (C = 0.002) is applied to the workspace and judged
by the gate as the challenger, and refused, because even the best of this grid is worse than
the champion: the alias stays and the refusal is tagged on its version. A bad grid is one line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from test_generated_project import Project

pytestmark = pytest.mark.slow

NAME = "churn-tune"
# Every MLflow run with its tags, params and registered version, and the registry's aliases.
MLFLOW_PROBE = """
import json, sys
from mlflow import MlflowClient
client = MlflowClient("sqlite:///mlflow.db")
name = sys.argv[1]
runs = client.search_runs([client.get_experiment_by_name(name).experiment_id])
versions = client.search_model_versions(f"name = '{name}'")
print(json.dumps({
    "runs": {r.info.run_id: {"tags": dict(r.data.tags), "params": dict(r.data.params)} for r in runs},
    "versions": {str(v.version): {"run_id": v.run_id, "tags": dict(v.tags)} for v in versions},
    "aliases": {a: str(v) for a, v in client.get_registered_model(name).aliases.items()},
}))
"""


@pytest.fixture(scope="module")
def project(template_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Project:
    created = Project.create(tmp_path_factory, template_dir, NAME, {})
    created.run("make", "setup")
    return created


def mlflow_state(project: Project) -> dict[str, dict[str, dict[str, object]]]:
    probe = project.run(str(project.path / ".venv" / "bin" / "python"), "-c", MLFLOW_PROBE, NAME)
    result: dict[str, dict[str, dict[str, object]]] = json.loads(probe.stdout.splitlines()[-1])
    return result


def test_bad_grid_is_one_line_and_queues_nothing(project: Project) -> None:
    bad = project.run("make", "tune", "GRID=model.C", check=False)
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert (
        "error: bad grid 'model.C': write each parameter as name=value,value "
        '(e.g. make tune GRID="model.C=0.1,1,10")\n'
    ) in bad.stderr
    unknown = project.run("make", "tune", "GRID=model.gamma=1,2", check=False)
    assert unknown.returncode == 2, unknown.stdout + unknown.stderr
    assert (
        "error: grid parameter 'model.gamma' is not a value in params.yaml "
        '(e.g. make tune GRID="model.C=0.1,1,10")\n'
    ) in unknown.stderr
    assert "queued" not in bad.stdout + unknown.stdout
    assert "No experiment tasks in the queue." in project.run("dvc", "queue", "status").stdout


def test_tune_runs_the_grid_applies_the_best_and_gates_it(project: Project) -> None:
    first = project.run("make", "pipeline")
    assert f"the first model: alias 'champion' -> {NAME} version 1" in first.stdout

    tuned = project.run("make", "tune", "GRID=model.C=0.001,0.002", check=False)
    output = tuned.stdout + tuned.stderr
    assert tuned.returncode != 0, output
    assert "tune: 2 experiments queued, running 2 at a time" in tuned.stdout
    names = re.findall(
        r"^\| (tune-\d{8}-\d{6}-\d) \| (0\.00\d) \| (0\.\d{4}) \|$", tuned.stdout, re.M
    )
    assert [(point, metric) for _, point, metric in names] == [
        ("0.001", "0.9904"),
        ("0.002", "0.9927"),
    ]
    low, best = names[0][0], names[1][0]
    assert f"tune: the best experiment is {best} (roc_auc = 0.9927): applying it" in tuned.stdout

    # dvc exp show: each experiment with its parameter and its test metrics.
    shown = json.loads(project.run("dvc", "exp", "show", "--json").stdout)
    experiments = {
        rev["name"]: rev["data"]
        for baseline in shown
        for experiment in baseline.get("experiments") or []
        for rev in experiment["revs"]
    }
    assert set(experiments) == {low, best}
    for name, c, roc_auc in ((low, 0.001, 0.9904), (best, 0.002, 0.9927)):
        data = experiments[name]
        assert data["params"]["params.yaml"]["data"]["model"] == {"C": c, "max_iter": 1000}
        metrics = data["metrics"]["metrics/metrics.json"]["data"]
        assert set(metrics) == {"accuracy", "f1", "roc_auc"}
        assert round(metrics["roc_auc"], 4) == roc_auc

    # MLflow: one training run per experiment, named by a tag, with its parameter.
    state = mlflow_state(project)
    tagged = {
        str(run["tags"]["dvc.experiment"]): (run_id, run)
        for run_id, run in state["runs"].items()
        if "dvc.experiment" in run["tags"]  # type: ignore[operator]
    }
    assert set(tagged) == {low, best}
    assert tagged[low][1]["params"]["C"] == "0.001"  # type: ignore[index]
    assert tagged[best][1]["params"]["C"] == "0.002"  # type: ignore[index]
    assert tagged[best][1]["tags"]["dvc.param.model.C"] == "0.002"  # type: ignore[index]

    # The best is applied to the workspace: its parameters and its registered model.
    params = yaml.safe_load((project.path / "params.yaml").read_text())
    assert params["model"]["C"] == 0.002
    registration = json.loads((project.path / "models" / "registration.json").read_text())
    assert state["versions"][registration["version"]]["run_id"] == tagged[best][0]

    # ... and the gate refuses it against the champion: the alias stays, the decision is tagged.
    assert "tune: the gate judges it as the challenger" in tuned.stdout
    assert f"quality gate failed for {NAME} version {registration['version']}:" in tuned.stderr
    assert (
        "  - accuracy = 0.9561 is worse than the champion's 0.9825 by 0.0263, more than the "
        "tolerance 0.01 (params.yaml gate.tolerance.accuracy)"
    ) in tuned.stderr
    assert "alias 'champion' stays on version 1" in tuned.stderr
    assert state["aliases"] == {"champion": "1"}
    tags = state["versions"][registration["version"]]["tags"]
    assert (tags["gate.result"], tags["gate.champion_version"]) == ("rejected", "1")  # type: ignore[index]
    decision = json.loads((project.path / "reports" / "gate.json").read_text())
    assert decision["challenger"]["version"] == registration["version"]
    assert decision["result"] == "rejected"

    # DVC rewrote params.yaml (nulls and quotes): yamllint still passes, and the experiments'
    # working copies are gone, and git-ignored (so yamllint-ignored) while they exist.
    project.run(".venv/bin/yamllint", "--strict", ".")
    assert not list((project.path / ".dvc" / "tmp" / "exps").glob("tmp*"))
    ignored = project.run("git", "check-ignore", ".dvc/tmp/exps/tmpabc/params.yaml").stdout
    assert ignored.strip() == ".dvc/tmp/exps/tmpabc/params.yaml"
