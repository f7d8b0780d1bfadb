"""The orchestrated pipeline's graph: read from dvc.yaml, the same for Kubeflow and Airflow.

The Kubeflow pipeline is compiled with the SDK and read back, and a whole run goes through the
SDK's local runner (slow). Airflow is too big to install here: its DAG file (the template's
dags/pipeline.py) only walks the graph tested below.
"""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mlopsify_runtime.orchestration import task
from mlopsify_runtime.orchestration.graph import cluster_settings, load_graph

ORCHESTRATORS = ("kubeflow", "airflow")
BIN = Path(sys.executable).parent


@pytest.fixture(params=ORCHESTRATORS)
def root(request: pytest.FixtureRequest, variant: Callable[..., Path]) -> Path:
    """The project rendered for each orchestrator (read only)."""
    return variant("classification", request.param)


def dvc_stages(root: Path) -> list[str]:
    names = []
    for dvcfile in ("dvc.yaml", "inference/dvc.yaml"):
        names += list(yaml.safe_load((root / dvcfile).read_text(encoding="utf-8"))["stages"])
    return names


def test_graph_is_read_from_dvc_yaml(root: Path) -> None:
    graph = load_graph(root)
    assert sorted(stage.name for stage in graph) == sorted(dvc_stages(root))
    position = {stage.name: index for index, stage in enumerate(graph)}
    for stage in graph:
        assert all(position[upstream] < position[stage.name] for upstream in stage.upstream)
    upstream = {stage.name: set(stage.upstream) for stage in graph}
    assert upstream["ingest"] == set()
    assert {"features", "train"} <= upstream["evaluate"]
    assert {"features", "evaluate"} <= upstream["batch"]


def test_an_unknown_stage_is_one_clear_line(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(root)
    with pytest.raises(SystemExit) as exited:
        task.main(["run", "nosuch", "--run-id", "r1"])
    assert exited.value.code == 2
    names = ", ".join(stage.name for stage in load_graph(root))
    assert (
        capsys.readouterr().err
        == f"task: no stage nosuch in dvc.yaml, inference/dvc.yaml: use one of {names}\n"
    )


def test_each_task_gets_its_resources(root: Path) -> None:
    settings = cluster_settings(root)
    assert settings.resources("train") == {"cpu": "2", "memory": "4Gi"}
    assert settings.resources("ingest") == {"cpu": "500m", "memory": "1Gi"}


def test_a_cycle_and_a_duplicate_stage_are_refused(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text(
        yaml.safe_dump(
            {
                "stages": {
                    "a": {"cmd": "a", "deps": ["b.txt"], "outs": ["a.txt"]},
                    "b": {"cmd": "b", "deps": ["a.txt"], "outs": ["b.txt"]},
                }
            }
        ),
        encoding="utf-8",
    )
    with pytest.raises(
        ValueError, match=r"^the stages \['a', 'b'\] depend on each other in a cycle$"
    ):
        load_graph(tmp_path)
    (tmp_path / "inference").mkdir()
    (tmp_path / "inference" / "dvc.yaml").write_text(
        yaml.safe_dump({"stages": {"a": {"cmd": "a"}}}), encoding="utf-8"
    )
    with pytest.raises(
        ValueError, match=r"^stage names must be unique across dvc.yaml, inference/dvc.yaml: a$"
    ):
        load_graph(tmp_path)


def test_compiled_pipeline_has_one_task_per_stage(
    variant: Callable[..., Path], tmp_path: Path
) -> None:
    from kfp import components

    from mlopsify_runtime.orchestration.kubeflow import compile_pipeline

    root = variant("classification", "kubeflow")
    compiled = compile_pipeline(tmp_path / "pipeline.yaml", root)
    components.load_component_from_file(str(compiled))  # the SDK reads its own YAML back
    spec = yaml.safe_load(compiled.read_text(encoding="utf-8"))
    tasks = spec["root"]["dag"]["tasks"]
    names = {key: task["taskInfo"]["name"] for key, task in tasks.items()}
    assert sorted(names.values()) == sorted(dvc_stages(root))
    for stage in load_graph(root):
        key = next(key for key, name in names.items() if name == stage.name)
        assert {names[dep] for dep in tasks[key].get("dependentTasks", [])} == set(stage.upstream)
    settings = cluster_settings(root)
    for key, task_spec in tasks.items():
        label = spec["components"][task_spec["componentRef"]["name"]]["executorLabel"]
        container = spec["deploymentSpec"]["executors"][label]["container"]
        wanted = settings.resources(names[key])
        assert container["resources"]["resourceCpuLimit"] == wanted["cpu"]
        assert container["resources"]["resourceMemoryLimit"] == wanted["memory"]
        assert container["image"] == settings.image
        assert {env["name"]: env["value"] for env in container.get("env", [])} == settings.env


@pytest.mark.slow
def test_a_local_kubeflow_run_trains_gates_registers_and_scores(
    variant: Callable[..., Path], tmp_path: Path
) -> None:
    """The whole pipeline through the Kubeflow SDK's local runner: every task runs in a scratch
    copy of the project and takes its inputs from a scratch DVC remote, as a pod would."""
    from mlflow import MlflowClient

    root = tmp_path / "demo-project"
    shutil.copytree(
        variant("classification", "kubeflow"), root, ignore=shutil.ignore_patterns(".git")
    )
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        # the team's steps (python -m demo_project.ingest): `make setup` would install the package
        "PYTHONPATH": str(root / "src"),
        "PIPELINE_REMOTE_URL": str(tmp_path / "remote"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }
    run(root, env, "-m", "mlopsify_runtime.orchestration.kubeflow", "run-local")
    runs = list((tmp_path / "remote" / "runs").iterdir())
    assert len(runs) == 1
    assert sorted(path.stem for path in runs[0].iterdir()) == sorted(dvc_stages(root))
    outputs = tmp_path / "outputs"
    task_module = "mlopsify_runtime.orchestration.task"
    run(root, env, "-m", task_module, "checkout", "--run-id", runs[0].name, "--into", str(outputs))
    registration = json.loads((outputs / "models" / "registration.json").read_text())
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    champion = client.get_model_version_by_alias(
        params["mlflow"]["model_name"], params["mlflow"]["alias"]
    )
    assert str(champion.version) == registration["version"]
    assert champion.tags["quality_gate"] == "passed"
    predictions = pd.read_parquet(outputs / "data" / "predictions" / "predictions.parquet")
    assert len(predictions) == len(pd.read_csv(outputs / "data" / "processed" / "test.csv"))
    assert set(predictions["model_version"]) == {registration["version"]}
    assert predictions["row_id"].tolist() == list(range(len(predictions)))


def run(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1800
    )
    assert done.returncode == 0, (
        f"{' '.join(args)} exited {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    return done
