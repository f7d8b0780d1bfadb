"""Column kinds: what each column of a team's table is, and the features the model makes of it.

A column is a `number`, a `boolean` (a number, 0 or 1), a `category` (one-hot encoded), a
`date` or a `datetime` (calendar features: year, month, day of week, the hour of a datetime,
and days since 1970-01-01), or `text`: strings with more than `MAX_CATEGORIES` distinct values,
hashed into `HASH_BUCKETS` columns instead of one-hot encoded into thousands. The id column
(params.yaml `data.id_column`) is none of these: it is carried for joins, never a feature.

Dates reach the model as text (a CSV cell, or the service's JSON string) and are parsed inside
the model's Pipeline (`derived_parts`), so training and serving make the same features.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from .kind_values import days_since_epoch, text_bucket

MAX_CATEGORIES = 100  # more distinct strings than this: text, hashed (a date column is no category)
HASH_BUCKETS = 32
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?$")
MIDNIGHT = re.compile(r"^.{10}[ T]00:00(:00(\.0+)?)?([+-]00:?00|Z)?$")
BOOLEAN_TEXT = {"true": 1.0, "false": 0.0}
DESCRIPTIONS = {
    "number": "a number",
    "boolean": "a boolean, as the number 0 or 1",
    "category": "a category, one-hot encoded",
    "date": "a date (YYYY-MM-DD): year, month, day of week and days since 1970-01-01",
    "datetime": "a date and time (YYYY-MM-DD hh:mm[:ss]): year, month, day of week, hour, days since 1970-01-01",
    "text": f"text of many values, hashed into {HASH_BUCKETS} columns",
}


def column_kind(values: pd.Series) -> str:
    """The kind of a column of the table, from its dtype and, for strings, its values."""
    if pd.api.types.is_bool_dtype(values):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(values):
        times = values.dropna()
        return "datetime" if ((times - times.dt.normalize()) != pd.Timedelta(0)).any() else "date"
    if pd.api.types.is_numeric_dtype(values):
        return "number"
    text = values.dropna().astype(str)
    if text.empty:
        return "category"
    if text.str.lower().isin(BOOLEAN_TEXT).all():
        return "boolean"
    if (text.str.match(DATE) | text.str.match(DATETIME)).all():  # a time of day other than midnight: datetime
        return "datetime" if (text.str.match(DATETIME) & ~text.str.match(MIDNIGHT)).any() else "date"
    return "text" if text.nunique() > MAX_CATEGORIES else "category"


def as_number(value: object) -> float:
    """A cell of a number or boolean column as the float the model takes (NaN when missing)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.nan
    if isinstance(value, str):
        return BOOLEAN_TEXT[value.lower()]
    return float(value)  # type: ignore[arg-type]  # a number, numpy scalar or bool


def as_text(value: object) -> str | None:
    """A cell of a category, text or date column as the string the model takes (None when missing);
    a Parquet timestamp as its ISO text, which the calendar parses."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return None
    return value.isoformat(sep=" ") if isinstance(value, pd.Timestamp) else str(value)


def calendar(matrix: Any, hour: bool = False) -> np.ndarray:
    """Each date column of `matrix` as year, month, day of week (Monday 0), [hour], days since
    1970-01-01: NaN where a value is missing or not a date."""
    frame = pd.DataFrame(np.asarray(matrix, dtype=object))
    parts = []
    for column in frame.columns:
        times = pd.to_datetime(frame[column], errors="coerce", format="mixed", utc=True).dt.tz_localize(None)
        fields = [times.dt.year, times.dt.month, times.dt.dayofweek] + ([times.dt.hour] if hour else [])
        parts += [field.astype(float).to_numpy() for field in fields]
        parts.append(np.array([days_since_epoch(value) for value in frame[column]], dtype=float))
    return np.column_stack(parts) if parts else np.empty((len(frame), 0))


def hashed(matrix: Any, buckets: int = HASH_BUCKETS) -> np.ndarray:
    """Each text column of `matrix` as `buckets` indicator columns, one set by the value's bucket
    (kind_values.py); a missing value sets none."""
    rows = np.asarray(matrix, dtype=object)
    result = np.zeros((rows.shape[0], rows.shape[1] * buckets))
    for j in range(rows.shape[1]):
        for i, value in enumerate(rows[:, j]):
            if value is not None and value == value:  # NaN is not equal to itself
                result[i, j * buckets + text_bucket(value, buckets)] = 1.0
    return result


def kind_indices(spec: dict[str, Any], kind: str) -> list[int]:
    columns = spec["columns"]
    return [i for i, name in enumerate(spec["features"]) if columns[name].get("kind", columns[name]["type"]) == kind]


def derived_parts(spec: dict[str, Any]) -> list[tuple[str, Any, list[int]]]:
    """ColumnTransformer parts for the dates, datetimes and texts of `spec` (models/features.json):
    calendar features, imputed and scaled; hashed texts."""

    def calendar_part(hour: bool) -> Pipeline:
        return Pipeline(
            [
                ("calendar", FunctionTransformer(calendar, kw_args={"hour": hour})),
                ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                ("scale", StandardScaler()),
            ]
        )

    parts = [
        ("dates", calendar_part(False), kind_indices(spec, "date")),
        ("datetimes", calendar_part(True), kind_indices(spec, "datetime")),
        ("texts", FunctionTransformer(hashed), kind_indices(spec, "text")),
    ]
    return [part for part in parts if part[2]]
