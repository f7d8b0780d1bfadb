"""One orchestrated task: run one DVC stage, taking its inputs from and leaving its outputs in the DVC remote.

A task runs in a scratch copy of the project's code and settings, without any data (in a pod,
a copy of the training image's project; locally, of the checkout). It fetches the records that its upstream
tasks left in the remote under ``runs/<run id>/`` (their dvc.lock entries and small uncached
outputs), pulls their outputs with ``dvc pull``, runs the stage with ``dvc repro
--single-item`` (so the step's command is exactly the one DVC runs) and pushes what it made.
A failing stage, such as a quality gate that does not pass, fails the task and stops the run.

    python -m PACKAGE.orchestration.task run train --run-id RUN
    python -m PACKAGE.orchestration.task checkout --run-id RUN --into DIR
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from .graph import PIPELINE_FILES, Stage, ancestors, load_graph

# Where tasks send data instead of the project's remote (tests, a scratch run).
REMOTE_URL_ENV = "PIPELINE_REMOTE_URL"
CONFIG_FILES = ("params.yaml", ".dvc/config")


class TaskError(RuntimeError):
    """A task cannot start: its workspace or its upstream records are missing."""


def safe_run_id(run_id: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", run_id.strip())
    if not cleaned.strip("._"):
        raise TaskError(f"run id {run_id!r} is empty: pass the orchestrator's run id (--run-id)")
    return cleaned


class RunStore:
    """The records of one run, as JSON files under ``runs/<run id>/`` of the workspace's DVC remote."""

    def __init__(self, workspace: Path, run_id: str) -> None:
        from dvc.repo import Repo

        with Repo(str(workspace)) as repo:
            remote = repo.cloud.get_remote()
        self.fs = remote.fs
        self.base = self.fs.join(remote.path, "runs", safe_run_id(run_id))

    def _path(self, stage: str) -> str:
        return str(self.fs.join(self.base, f"{stage}.json"))

    def write(self, stage: str, record: dict[str, Any]) -> None:
        self.fs.makedirs(self.base, exist_ok=True)
        self.fs.pipe_file(self._path(stage), json.dumps(record, indent=2).encode())

    def read(self, stage: str) -> dict[str, Any]:
        path = self._path(stage)
        if not self.fs.exists(path):
            raise TaskError(f"stage {stage} left no record at {path}: it has not run in this run yet")
        loaded: dict[str, Any] = json.loads(self.fs.cat_file(path))
        return loaded


class StageFailed(RuntimeError):
    """DVC could not pull, run or push a stage (a failing step, such as the quality gate)."""


def dvc(action: str, address: str, cwd: Path) -> None:
    """``dvc pull|repro|push`` of one stage, in-process (a DVC start-up costs seconds); the step runs as DVC runs it."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    # DVC runs a stage's command with the `python` first on PATH: this process's environment.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    print(f"+ dvc {action} {address}", flush=True)
    previous = Path.cwd()
    os.chdir(cwd)  # DVC resolves output paths from the working directory, as its command line does
    try:
        with Repo(str(cwd)) as repo:
            if action == "pull":
                repo.pull(targets=[address])
            elif action == "repro":
                repo.reproduce(address, single_item=True)
            else:
                repo.push(targets=[address])
    except DvcException as error:
        reasons, cause = [str(error)], error.__cause__
        while cause is not None:
            reasons.append(str(cause))
            cause = cause.__cause__
        raise StageFailed(f"dvc {action} {address} failed: {': '.join(reasons)}") from error
    finally:
        os.chdir(previous)


def source_paths(graph: list[Stage]) -> list[str]:
    """What the code of the stages reads but no stage writes: the files a workspace starts with."""
    outputs = {out for stage in graph for out in stage.outs}
    deps = {dep for stage in graph for dep in stage.deps}
    inputs = {dep for dep in deps if not any(dep == out or dep.startswith(out + "/") for out in outputs)}
    return sorted(inputs | set(PIPELINE_FILES) | set(CONFIG_FILES))


def remote_settings(root: Path) -> tuple[str, str]:
    """The default remote's name and URL, a local directory made absolute (DVC reads it relative to .dvc/)."""
    from dvc.config import Config

    if not (root / ".dvc" / "config").is_file():
        raise TaskError(f"{root} has no .dvc/config: run the task in the project (or its training image)")
    config = Config(dvc_dir=str(root / ".dvc"))  # no git needed: an image has none
    name = config["core"].get("remote")
    if not name:
        raise TaskError("the project has no default DVC remote: run `dvc remote add -d storage URL`")
    return name, os.environ.get(REMOTE_URL_ENV) or str(config["remote"][name]["url"])


def prepare_workspace(root: Path, workspace: Path) -> Path:
    """A copy of the project's code and settings without any data, a DVC project of its own (no git)."""
    graph = load_graph(root)
    for relative in source_paths(graph):
        source = root / relative
        if not source.exists():
            continue
        target = workspace / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    name, url = remote_settings(root)
    (workspace / ".dvc" / "config.local").write_text(
        f"[core]\n    no_scm = true\n['remote \"{name}\"']\n    url = {url}\n", encoding="utf-8"
    )
    return workspace


@contextmanager
def fresh_workspace(root: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="task-") as scratch:
        yield prepare_workspace(root, Path(scratch))


def restore(workspace: Path, records: list[dict[str, Any]]) -> None:
    """Write the upstream stages' dvc.lock entries and small uncached outputs into ``workspace``."""
    locks: dict[str, dict[str, Any]] = {}
    for record in records:
        locks.setdefault(record["lockfile"], {"schema": "2.0", "stages": {}})["stages"][record["stage"]] = record[
            "lock"
        ]
        for relative, text in record["files"].items():
            target = workspace / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    for lockfile, content in locks.items():
        (workspace / lockfile).parent.mkdir(parents=True, exist_ok=True)
        (workspace / lockfile).write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")


def record_of(workspace: Path, stage: Stage) -> dict[str, Any]:
    lock = yaml.safe_load((workspace / stage.lockfile).read_text(encoding="utf-8"))
    files = {path: (workspace / path).read_text(encoding="utf-8") for path in stage.uncached}
    return {"stage": stage.name, "lockfile": stage.lockfile, "lock": lock["stages"][stage.name], "files": files}


def pull(workspace: Path, stages: list[Stage]) -> None:
    for stage in stages:
        if set(stage.outs) - set(stage.uncached):
            dvc("pull", stage.address, cwd=workspace)


def run_in(workspace: Path, name: str, run_id: str) -> None:
    graph = load_graph(workspace)
    by_name = {stage.name: stage for stage in graph}
    stage, store = by_name[name], RunStore(workspace, run_id)
    restore(workspace, [store.read(upstream.name) for upstream in ancestors(graph, name)])
    pull(workspace, [by_name[upstream] for upstream in stage.upstream])
    dvc("repro", stage.address, cwd=workspace)
    dvc("push", stage.address, cwd=workspace)
    store.write(name, record_of(workspace, stage))


def keep_local_artifacts(root: Path) -> None:
    """With a local tracking database, make the experiment keep its artifacts in ``root/mlruns``.

    MLflow puts an experiment's artifacts under ``./mlruns`` of the directory that creates it: a
    scratch workspace would take the models with it. An MLflow server keeps them in its own store.
    """
    uri = os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    if not uri.startswith("sqlite:"):
        return
    import mlflow

    from ..config import load_params

    mlflow.set_tracking_uri(uri)
    experiment = load_params(root / "params.yaml").mlflow.experiment
    if mlflow.get_experiment_by_name(experiment) is None:
        mlflow.create_experiment(experiment, artifact_location=(root / "mlruns").as_uri())


def run_stage(name: str, run_id: str, root: Path = Path()) -> None:
    """Run stage ``name`` of run ``run_id`` in a scratch copy of ``root``, the project."""
    root = root.absolute()
    known = [stage.name for stage in load_graph(root)]
    if name not in known:
        raise TaskError(f"no stage {name} in {', '.join(PIPELINE_FILES)}: use one of {', '.join(known)}")
    keep_local_artifacts(root)
    with fresh_workspace(root) as workspace:
        run_in(workspace, name, run_id)


def checkout(run_id: str, into: Path, root: Path = Path()) -> Path:
    """Every output of run ``run_id``, from the remote into a new workspace ``into`` (to inspect a run)."""
    into.mkdir(parents=True, exist_ok=False)
    prepare_workspace(root.absolute(), into)
    graph = load_graph(into)
    store = RunStore(into, run_id)
    restore(into, [store.read(stage.name) for stage in graph])
    pull(into, graph)
    return into


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="task", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run one stage as a task of run RUN_ID")
    run.add_argument("stage")
    run.add_argument("--run-id", required=True)
    take = commands.add_parser("checkout", help="copy every output of a finished run into a new directory")
    take.add_argument("--run-id", required=True)
    take.add_argument("--into", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            run_stage(args.stage, args.run_id)
        else:
            print(f"run {args.run_id}: outputs in {checkout(args.run_id, args.into)}")
    except (TaskError, ValueError) as error:
        print(f"task: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except StageFailed as error:
        print(f"task: {error}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
