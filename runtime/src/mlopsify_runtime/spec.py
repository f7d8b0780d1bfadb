"""The model's feature spec (models/features.json) and the matrix the model takes.

The spec is the contract between training and serving: the features in order, the target, the
task type, each column's type (a number, or a category with the categories seen in training,
`nullable` where training data had missing values) and its kind (kinds.py: a boolean is a
number, a date, datetime or text column is sent as a string), the id column that the service
echoes, and the classes of a classifier. The service
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
from .kinds import as_number, as_text, column_kind

Spec = dict[str, Any]
SHOWN_VALUES = 5  # a list of values in a message: the first few and how many more


def json_value(value: object) -> object:
    """numpy scalars as plain JSON values (a class label 1, not numpy.int64(1))."""
    return value.item() if isinstance(value, np.generic) else value


def few(values: list[Any]) -> str:
    """`values` for a one-line message: the first few, then how many more."""
    shown = ", ".join(str(value) for value in values[:SHOWN_VALUES])
    more = len(values) - SHOWN_VALUES
    return f"{shown} and {more:,} more" if more > 0 else shown


def column_spec(values: pd.Series) -> dict[str, Any]:
    kind = column_kind(values)
    if kind in {"number", "boolean"}:
        spec: dict[str, Any] = {"type": "number"}
    elif kind == "category":
        spec = {"type": "category", "categories": sorted({str(value) for value in values.dropna()})}
    else:  # date, datetime, text: a string the model's Pipeline turns into features (kinds.py)
        spec = {"type": "category"}
    if kind not in {"number", "category"}:
        spec["kind"] = kind
    if values.isna().any():
        spec["nullable"] = True
    return spec


def describe(
    frame: pd.DataFrame, features: list[str], target: str, task_type: str, id_column: str | None = None
) -> Spec:
    """The spec of a model trained on `frame` (the training set)."""
    spec: Spec = {
        "features": features,
        "target": target,
        "task_type": task_type,
        "columns": {name: column_spec(frame[name]) for name in features},
    }
    if id_column:
        spec["id_column"] = id_column
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
    """The one-hot encoded categories: not the dates and texts, sent as strings too (kinds.py)."""
    columns = spec["columns"]
    return [
        i
        for i, name in enumerate(spec["features"])
        if columns[name]["type"] == "category" and "kind" not in columns[name]
    ]


def text_indices(spec: Spec) -> list[int]:
    """Every feature sent as a string: categories, dates and texts."""
    return [i for i, name in enumerate(spec["features"]) if spec["columns"][name]["type"] == "category"]


def number_indices(spec: Spec) -> list[int]:
    return [i for i, name in enumerate(spec["features"]) if spec["columns"][name]["type"] == "number"]


def number_column(values: pd.Series) -> np.ndarray:
    """A number or boolean column as floats (NaN where missing; "true"/"false" text as 1 and 0)."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        numbers: np.ndarray = values.to_numpy(dtype=np.float64, na_value=np.nan)
        return numbers
    return np.array([as_number(value) for value in values], dtype=np.float64)


def to_matrix(frame: pd.DataFrame, spec: Spec) -> np.ndarray:
    """The rows of `frame` as the service hands them to the model (see the module docstring)."""
    features = spec["features"]
    texts = text_indices(spec)
    if not texts:
        numbers = [number_column(frame[name]) for name in features]
        return np.column_stack(numbers) if numbers else np.empty((len(frame), 0))
    matrix = np.empty((len(frame), len(features)), dtype=object)
    for i, name in enumerate(features):
        if i in texts:
            matrix[:, i] = [as_text(value) for value in frame[name]]
        else:  # None for a missing number: what the service's JSON null becomes
            matrix[:, i] = [None if np.isnan(number) else float(number) for number in number_column(frame[name])]
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
