"""The orchestrated pipeline's graph: read from dvc.yaml, the same for Kubeflow and Airflow.

The Kubeflow pipeline is compiled with the SDK and read back. Airflow is too big to install
here: its DAG file (the template's dags/pipeline.py) only walks the graph tested below.
"""

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from mlopsify_runtime.orchestration import task
from mlopsify_runtime.orchestration.graph import cluster_settings, load_graph

ORCHESTRATORS = ("kubeflow", "airflow")


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
