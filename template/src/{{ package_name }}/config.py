"""Pipeline settings: params.yaml as typed objects, and the files every step reads or writes.

Paths are relative to the project root, where DVC runs each stage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PARAMS_FILE = Path("params.yaml")
SCHEMA_FILE = Path("data/schema.yaml")
RAW_DATA = Path("data/raw/dataset.csv")
VALIDATION_REPORT = Path("reports/data_validation.json")
TRAIN_DATA = Path("data/processed/train.csv")
TEST_DATA = Path("data/processed/test.csv")
MODEL_DIR = Path("models/model")
FEATURES_FILE = Path("models/features.json")
REGISTRATION_FILE = Path("models/registration.json")
METRICS_FILE = Path("metrics/metrics.json")
TRAIN_METRICS_FILE = Path("metrics/train.json")

TARGET = "target"
TASK_TYPES = ("classification", "regression")
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


@dataclass(frozen=True)
class DataParams:
    dataset: str
    test_size: float
    random_state: int


@dataclass(frozen=True)
class GateParams:
    """Quality gate: each metric in ``minimum`` must reach it, each in ``maximum`` stay below."""

    minimum: dict[str, float]
    maximum: dict[str, float]


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


def parse_params(raw: dict[str, Any]) -> Params:
    """Build ``Params`` from the parsed params.yaml; a wrong task type fails here."""
    task_type = raw["task_type"]
    if task_type not in TASK_TYPES:
        raise ValueError(f"params.yaml task_type {task_type!r} is not one of {TASK_TYPES}")
    gate = raw.get("gate") or {}
    return Params(
        task_type=task_type,
        data=DataParams(**raw["data"]),
        model=dict(raw.get("model") or {}),
        gate=GateParams(
            minimum={k: float(v) for k, v in (gate.get("min") or {}).items()},
            maximum={k: float(v) for k, v in (gate.get("max") or {}).items()},
        ),
        mlflow=MlflowParams(**raw["mlflow"]),
    )


def load_params(path: Path = PARAMS_FILE) -> Params:
    """Read params.yaml (DVC's parameter file) into typed settings."""
    return parse_params(yaml.safe_load(path.read_text(encoding="utf-8")))


def tracking_uri() -> str:
    """MLflow tracking URI: ``MLFLOW_TRACKING_URI`` when set, else the project's SQLite file."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
