# mypy: disallow-untyped-decorators=False
# (kfp's @dsl.component and @dsl.pipeline carry no type hints.)
"""The pipeline on Kubeflow Pipelines v2: one task per DVC stage, in the order dvc.yaml gives.

Every task runs the same component, which runs one stage with ``task.run_stage``: inputs and
outputs travel through the DVC remote, tracking goes to ``MLFLOW_TRACKING_URI``. The graph is read
from dvc.yaml when the pipeline is compiled, the image, environment and resources from
orchestration.yaml.

    python -m mlopsify_runtime.orchestration.kubeflow compile [--output build/kubeflow/pipeline.yaml]
    python -m mlopsify_runtime.orchestration.kubeflow run-local     # the SDK's local runner, one process per task
    python -m mlopsify_runtime.orchestration.kubeflow upload [--output ...]   # to $KFP_ENDPOINT
"""

# No `from __future__ import annotations`: kfp reads the component's annotations as types.
import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from kfp import compiler, dsl

from .graph import cluster_settings, load_graph, task_id

PIPELINE_NAME = os.environ.get("PIPELINE_NAME") or Path.cwd().name  # the project sets it (Makefile)
COMPILED = Path("build/kubeflow/pipeline.yaml")
ENDPOINT_ENV = "KFP_ENDPOINT"
ROOT = Path.cwd()  # the project: every make target and task runs from its root


def _component(image: str) -> Callable[..., Any]:
    # The image holds the project and kfp itself (its `kubeflow` extra): tasks install nothing.
    @dsl.component(base_image=image, install_kfp_package=False)
    def dvc_stage(stage: str, run_id: str, project: str) -> None:
        """Run one DVC stage of the run; a failing stage (the quality gate) fails the task."""
        from pathlib import Path

        from mlopsify_runtime.orchestration.task import run_stage

        run_stage(stage, run_id, root=Path(project))

    return cast("Callable[..., Any]", dvc_stage)


def build_pipeline(root: Path = ROOT, cluster: bool = True) -> Callable[..., Any]:
    """The pipeline of ``root``'s dvc.yaml files (``cluster``: with the env of orchestration.yaml)."""
    graph, settings = load_graph(root), cluster_settings(root)
    dvc_stage = _component(settings.image)

    @dsl.pipeline(name=PIPELINE_NAME, description=f"{PIPELINE_NAME}: the DVC pipeline, one task per stage")
    def pipeline(project: str = ".") -> None:
        tasks: dict[str, Any] = {}
        for stage in graph:
            task = dvc_stage(stage=stage.name, run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER, project=project)
            task.set_display_name(task_id(stage.name)).set_caching_options(False)
            for upstream in stage.upstream:
                task.after(tasks[upstream])
            resources = settings.resources(stage.name)
            if "cpu" in resources:
                task.set_cpu_request(resources["cpu"]).set_cpu_limit(resources["cpu"])
            if "memory" in resources:
                task.set_memory_request(resources["memory"]).set_memory_limit(resources["memory"])
            for name, value in (settings.env if cluster else {}).items():
                task.set_env_variable(name, value)
            tasks[stage.name] = task

    return cast("Callable[..., Any]", pipeline)


def compile_pipeline(output: Path = COMPILED, root: Path = ROOT) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(build_pipeline(root), str(output))
    return output


def run_local(root: Path = ROOT) -> None:
    """The whole pipeline with the SDK's SubprocessRunner: each task in a scratch copy of ``root``."""
    from kfp import local

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root / "build" / "kubeflow" / "local"))
    build_pipeline(root, cluster=False)(project=str(root))


def upload(output: Path = COMPILED) -> str:
    """Upload the compiled pipeline to $KFP_ENDPOINT, as a new version when it already exists."""
    import kfp

    endpoint = os.environ.get(ENDPOINT_ENV, "")
    if not endpoint:
        raise SystemExit(f"{ENDPOINT_ENV} is not set: give the Kubeflow Pipelines API URL (docs/orchestration.md)")
    client = kfp.Client(host=endpoint)
    version = os.environ.get("GIT_COMMIT") or "local"
    pipeline_id = client.get_pipeline_id(PIPELINE_NAME)
    if pipeline_id is None:
        client.upload_pipeline(str(output), pipeline_name=PIPELINE_NAME)
    else:
        client.upload_pipeline_version(str(output), pipeline_version_name=version, pipeline_id=pipeline_id)
    return endpoint


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="kubeflow", description="compile, run locally or upload the pipeline")
    parser.add_argument("command", choices=["compile", "run-local", "upload"])
    parser.add_argument("--output", type=Path, default=COMPILED)
    args = parser.parse_args(argv)
    if args.command == "compile":
        print(f"kubeflow: compiled {compile_pipeline(args.output)}")
    elif args.command == "run-local":
        run_local()
        print("kubeflow: the local run finished")
    else:
        print(f"kubeflow: uploaded {args.output} to {upload(args.output)}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
