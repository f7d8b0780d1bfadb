"""Pipeline settings: params.yaml as typed objects, and the files every step reads or writes.

Paths are relative to the project root, where DVC runs each stage. Every mistake a person can
make in params.yaml or in the data is a `PipelineError`: `run_step` prints it as plain lines and
exits 1, never with a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PARAMS_FILE = Path("params.yaml")
SCHEMA_FILE = Path("data/schema.yaml")
EXTERNAL_DATA = Path("data/external")
RAW_DATA = Path("data/raw/dataset.csv")
VALIDATION_REPORT = Path("reports/data_validation.json")
TRAIN_DATA = Path("data/processed/train.csv")
TEST_DATA = Path("data/processed/test.csv")
MODEL_DIR = Path("models/model")
FEATURES_FILE = Path("models/features.json")
REGISTRATION_FILE = Path("models/registration.json")
METRICS_FILE = Path("metrics/metrics.json")
TRAIN_METRICS_FILE = Path("metrics/train.json")

TARGET = "target"  # the label of the bundled samples: the default of data.target
TASK_TYPES = ("classification", "regression")
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


class PipelineError(Exception):
    """Bad parameters or bad data: the message says what is wrong and what to do."""


@dataclass(frozen=True)
class DataParams:
    """The `data:` section: where the table comes from and which columns play which part."""

    source: str  # a bundled sample (breast_cancer, diabetes, wine) or a CSV/Parquet file
    target: str = TARGET
    id_column: str | None = None  # identifies a row; never a feature
    features: list[str] = field(default_factory=list)  # empty: every column but the target and id
    test_size: float = 0.2
    random_state: int = 42


@dataclass(frozen=True)
class GateParams:
    """Quality gate: each metric in ``minimum`` must reach it, each in ``maximum`` stay below, each
    in ``plus`` beat the naive baseline's by it and each in ``times`` be within that multiple of
    the baseline's (``gate.baseline``, evaluate.py), and each in ``tolerance`` be no worse than
    the champion's by more than it (challenger.py)."""

    minimum: dict[str, float]
    maximum: dict[str, float]
    tolerance: dict[str, float] = field(default_factory=dict)
    plus: dict[str, float] = field(default_factory=dict)
    times: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SliceParams:
    """`slices:`: the column whose groups are judged apart, and each metric's minimum in every group."""

    column: str | None = None
    minimum: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class MlflowParams:
    experiment: str
    model_name: str
    alias: str


@dataclass(frozen=True)
class Params:
    task_type: str
    data: DataParams
    model: dict[str, Any]
    gate: GateParams
    mlflow: MlflowParams
    slices: SliceParams = field(default_factory=SliceParams)
    robustness_noise: float = 0.0  # `robustness.noise`: 0 is no robustness check


def parse_data(raw: dict[str, Any]) -> DataParams:
    """The `data:` mapping; `dataset` is the older name of `source` (projects made before 0.2)."""
    values = dict(raw)
    if "dataset" in values:
        values.setdefault("source", values.pop("dataset"))
    known = set(DataParams.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise PipelineError(f"params.yaml data: unknown keys {unknown}: use {sorted(known)}")
    if not values.get("source"):
        raise PipelineError("params.yaml data.source is empty: name a bundled sample or a CSV/Parquet file")
    values["features"] = [str(name) for name in values.get("features") or []]
    if not 0 < float(values.get("test_size", 0.2)) < 1:
        raise PipelineError(f"params.yaml data.test_size {values['test_size']} must be between 0 and 1")
    return DataParams(**values)


def parse_params(raw: dict[str, Any]) -> Params:
    """Build ``Params`` from the parsed params.yaml; a wrong task type fails here."""
    task_type = raw.get("task_type")
    if task_type not in TASK_TYPES:
        raise PipelineError(f"params.yaml task_type {task_type!r} is not one of {TASK_TYPES}")
    gate = raw.get("gate") or {}
    return Params(
        task_type=task_type,
        data=parse_data(raw.get("data") or {}),
        model=dict(raw.get("model") or {}),
        gate=GateParams(
            minimum={k: float(v) for k, v in (gate.get("min") or {}).items()},
            maximum={k: float(v) for k, v in (gate.get("max") or {}).items()},
            tolerance={k: float(v) for k, v in (gate.get("tolerance") or {}).items()},
            plus={k: float(v) for k, v in ((gate.get("baseline") or {}).get("plus") or {}).items()},
            times={k: float(v) for k, v in ((gate.get("baseline") or {}).get("times") or {}).items()},
        ),
        mlflow=MlflowParams(**raw["mlflow"]),
        slices=SliceParams(
            column=(raw.get("slices") or {}).get("column") or None,
            minimum={k: float(v) for k, v in ((raw.get("slices") or {}).get("min") or {}).items()},
        ),
        robustness_noise=float((raw.get("robustness") or {}).get("noise") or 0.0),
    )


def load_params(path: Path = PARAMS_FILE) -> Params:
    """Read params.yaml (DVC's parameter file) into typed settings."""
    return parse_params(yaml.safe_load(path.read_text(encoding="utf-8")))


def tracking_uri() -> str:
    """MLflow tracking URI: ``MLFLOW_TRACKING_URI`` when set, else the project's SQLite file.

    A DVC experiment runs in a copy of the project (.dvc/tmp/exps) without the git-ignored
    mlflow.db: DVC_ROOT names the project itself, so every experiment logs to the one registry.
    """
    if uri := os.environ.get("MLFLOW_TRACKING_URI"):
        return uri
    root = os.environ.get("DVC_ROOT")
    return f"sqlite:///{Path(root, 'mlflow.db')}" if root and experiment_name() else DEFAULT_TRACKING_URI


def experiment_name() -> str | None:
    """The DVC experiment this stage runs in (`make tune`), None in a plain `dvc repro`."""
    return os.environ.get("DVC_EXP_NAME") or None


def run_step(main: Callable[[], None]) -> None:
    """Run a step's ``main``: a `PipelineError` becomes its message on stderr and exit code 1."""
    try:
        main()
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
