"""Fixtures of the runtime's own tests: small projects in tmp_path, no environment, no `make setup`.

A test that needs a project's files gets params.yaml, data/schema.yaml and the dvc.yaml files as
the working tree's template renders them (one render per variant and session), copied into its
tmp_path, which becomes the working directory: the runtime reads every path relative to it. The
pipeline's steps run in-process, with the runtime's functions and a model of the test's own (the
team's code stays with the template's tests).
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest
from helpers import RenderedVariants
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlopsify_runtime import hooks
from mlopsify_runtime.config import (
    RAW_DATA,
    TEST_DATA,
    TRAIN_DATA,
    Params,
    load_params,
)
from mlopsify_runtime.ingest import ingest, load_source, select_columns
from mlopsify_runtime.spec import Spec, read_frame
from mlopsify_runtime.training import run_training
from mlopsify_runtime.validate import load_schema

TASK_TYPES = ("classification", "regression")
# The files of a rendered project that the runtime's steps read.
PROJECT_FILES = ("params.yaml", "dvc.yaml", "inference", "data", "orchestration.yaml", ".dvc")

Variant = Callable[..., Path]


@pytest.fixture(scope="session")
def variant(rendered: RenderedVariants) -> Variant:
    """The project rendered for ``task_type`` and ``orchestrator`` (read only: copy what you change)."""

    def _variant(task_type: str = "classification", orchestrator: str = "kubeflow") -> Path:
        return rendered({"task_type": task_type, "orchestrator": orchestrator})

    return _variant


@pytest.fixture(params=TASK_TYPES)
def task_type(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def rendered_project(variant: Variant, task_type: str) -> Path:
    return variant(task_type)


@pytest.fixture
def params(rendered_project: Path) -> Params:
    return load_params(rendered_project / "params.yaml")


@pytest.fixture
def schema(rendered_project: Path) -> Any:
    return load_schema(rendered_project / "data" / "schema.yaml")


@pytest.fixture
def dataset(params: Params) -> pd.DataFrame:
    """The variant's data set (a bundled sample), as ingest keeps it: a copy each test may change."""
    return select_columns(load_source(params.data), params.data)


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One scratch MLflow database for the session: creating its tables takes seconds."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def project(
    rendered_project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    tracking_uri: str,
) -> Path:
    """A scratch copy of the variant's files as the cwd, with a registered model name of the test's own."""
    root = tmp_path / "project"
    root.mkdir()
    for name in PROJECT_FILES:
        source = rendered_project / name
        if source.is_dir():
            shutil.copytree(source, root / name)
        elif source.is_file():
            shutil.copy2(source, root / name)
    text = (root / "params.yaml").read_text(encoding="utf-8")
    own_name = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")
    (root / "params.yaml").write_text(
        re.sub(r"(?m)^(  model_name: )(\S+)", rf"\g<1>\g<2>-{own_name}", text), encoding="utf-8"
    )
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    for variable in ("MODEL_SIGNING_KEY", "DVC_EXP_NAME", "DVC_ROOT", "GATE_SKIP_CHAMPION"):
        monkeypatch.delenv(variable, raising=False)
    return root


def build_pipeline(task_type: str, model_params: dict[str, Any], spec: Spec) -> Pipeline:
    """The model of the runtime's tests: scaling and a linear model (the bundled samples are numbers)."""
    estimator = (
        LogisticRegression(**model_params)
        if task_type == "classification"
        else Ridge(**model_params)
    )
    return Pipeline([("scale", StandardScaler()), ("model", estimator)])


def split_data() -> None:
    """The features step of a project: a stratified split of data/raw into data/processed."""
    params = load_params()
    frame = read_frame(RAW_DATA)
    stratify = frame[params.data.target] if params.task_type == "classification" else None
    train, test = train_test_split(
        frame,
        test_size=params.data.test_size,
        random_state=params.data.random_state,
        stratify=stratify,
    )
    for part, path in ((train, TRAIN_DATA), (test, TEST_DATA)):
        path.parent.mkdir(parents=True, exist_ok=True)
        part.to_csv(path, index=False)


def train_model() -> None:
    """ingest, features and train of the project in the cwd: a registered version in models/."""
    ingest(load_params().data)
    split_data()
    run_training(build_pipeline)


@pytest.fixture
def train(project: Path) -> Callable[[], None]:
    """Run ingest, features and train in ``project`` (a new registered version each call)."""
    return train_model


@pytest.fixture
def fake_hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., ModuleType]]:
    """Install a project's hooks module made of the given functions: ``fake_hooks(gate_metrics=f)``.

    Stands in for the entry point a project declares in its pyproject.toml (no project package
    is installed here); the cache of ``hooks_module`` is cleared before and after the test.
    """

    def install(**functions: Callable[..., Any]) -> ModuleType:
        module = ModuleType("fake_project_hooks")
        for name, function in functions.items():
            setattr(module, name, function)
        monkeypatch.setitem(sys.modules, module.__name__, module)
        monkeypatch.setattr(hooks, "hooks_module", lambda: module)
        return module

    entry_points = hooks.hooks_module
    entry_points.cache_clear()
    yield install
    entry_points.cache_clear()
