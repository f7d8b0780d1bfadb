"""The model's feature spec (models/features.json) and the matrix the model takes.

The spec is the contract between training and serving: the features in order, the target, the
task type, each column's type (a number, or a category with the categories seen in training,
`nullable` where training data had missing values) and the classes of a classifier. The service
builds its request schema from it and hands the model a 2-D numpy array in feature order:
float64 when every feature is a number, else object with strings for categories; None (or NaN)
for a missing value. `to_matrix` makes exactly that array from a frame, and `model_input` the
same values with the feature names as columns (what training and evaluation feed the model,
so that the fitted Pipeline knows its features' names; it selects columns by position).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .config import SCHEMA_FILE

Spec = dict[str, Any]


def is_number(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def json_value(value: object) -> object:
    """numpy scalars as plain JSON values (a class label 1, not numpy.int64(1))."""
    return value.item() if isinstance(value, np.generic) else value


def column_spec(values: pd.Series) -> dict[str, Any]:
    if is_number(values):
        spec: dict[str, Any] = {"type": "number"}
    else:
        spec = {"type": "category", "categories": sorted({str(value) for value in values.dropna()})}
    if values.isna().any():
        spec["nullable"] = True
    return spec


def describe(frame: pd.DataFrame, features: list[str], target: str, task_type: str) -> Spec:
    """The spec of a model trained on `frame` (the training set)."""
    spec: Spec = {
        "features": features,
        "target": target,
        "task_type": task_type,
        "columns": {name: column_spec(frame[name]) for name in features},
    }
    if task_type == "classification":
        spec["classes"] = [json_value(label) for label in sorted(frame[target].dropna().unique())]
    return spec


def read_spec(path: Path) -> Spec:
    spec: Spec = json.loads(path.read_text(encoding="utf-8"))
    return spec


def write_spec(spec: Spec, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")


def category_indices(spec: Spec) -> list[int]:
    return [i for i, name in enumerate(spec["features"]) if spec["columns"][name]["type"] == "category"]


def number_indices(spec: Spec) -> list[int]:
    return [i for i, name in enumerate(spec["features"]) if spec["columns"][name]["type"] == "number"]


def to_matrix(frame: pd.DataFrame, spec: Spec) -> np.ndarray:
    """The rows of `frame` as the service hands them to the model (see the module docstring)."""
    features = spec["features"]
    if not category_indices(spec):
        numbers: np.ndarray = frame[features].to_numpy(dtype=np.float64)
        return numbers
    matrix = np.empty((len(frame), len(features)), dtype=object)
    for i, name in enumerate(features):
        values = frame[name]
        column: list[str | float | None]
        if spec["columns"][name]["type"] == "category":
            column = [None if pd.isna(value) else str(value) for value in values]
        else:
            column = [None if pd.isna(value) else float(value) for value in values]
        matrix[:, i] = column
    return matrix


def model_input(frame: pd.DataFrame, spec: Spec) -> pd.DataFrame:
    """`to_matrix` with the feature names as columns."""
    return pd.DataFrame(to_matrix(frame, spec), columns=spec["features"], index=frame.index)


def category_columns(schema_path: Path = SCHEMA_FILE) -> list[str]:
    """Columns that data/schema.yaml declares as text (object or string dtype)."""
    if not schema_path.is_file():
        return []
    columns = (yaml.safe_load(schema_path.read_text(encoding="utf-8")) or {}).get("columns") or {}
    text = {"object", "str", "string"}
    return [str(name) for name, spec in columns.items() if str((spec or {}).get("dtype")) in text]


def read_frame(path: Path, schema_path: Path = SCHEMA_FILE) -> pd.DataFrame:
    """A CSV of the pipeline; text columns of the schema stay text even when they look like numbers."""
    return pd.read_csv(path, dtype={name: str for name in category_columns(schema_path)})
