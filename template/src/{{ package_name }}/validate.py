"""Validate: check data/raw/dataset.csv against data/schema.yaml and stop the pipeline on bad data.

Every problem is reported at once, one line each, and the step exits non-zero, so that DVC
never trains on data that does not look like the data the model was built for.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .config import RAW_DATA, SCHEMA_FILE, TARGET, VALIDATION_REPORT


def is_float_column(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def is_int_column(values: pd.Series) -> bool:
    """Integers; a CSV column of integers with a gap reads as float, so whole floats count too."""
    if pd.api.types.is_integer_dtype(values):
        return True
    if not pd.api.types.is_float_dtype(values):
        return False
    finite = values.to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    return bool((finite == np.round(finite)).all())


DTYPE_CHECKS = {"float": is_float_column, "int": is_int_column}


class DataValidationError(Exception):
    """The data breaks the schema; ``problems`` lists every broken rule."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"data validation failed for {source} ({len(problems)} problems):\n{lines}")


@dataclass(frozen=True)
class ColumnSpec:
    dtype: str
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class Schema:
    columns: dict[str, ColumnSpec]
    min_rows: int
    class_labels: list[int] = field(default_factory=list)
    min_class_share: float = 0.0


def parse_schema(raw: dict[str, Any]) -> Schema:
    columns = {
        name: ColumnSpec(dtype=spec["dtype"], minimum=spec.get("min"), maximum=spec.get("max"))
        for name, spec in raw["columns"].items()
    }
    unknown = sorted({spec.dtype for spec in columns.values()} - set(DTYPE_CHECKS))
    if unknown:
        raise ValueError(f"schema dtypes {unknown} are unknown: use one of {sorted(DTYPE_CHECKS)}")
    classes = raw.get("classes") or {}
    return Schema(
        columns=columns,
        min_rows=int(raw["min_rows"]),
        class_labels=[int(label) for label in classes.get("labels", [])],
        min_class_share=float(classes.get("min_share", 0.0)),
    )


def load_schema(path: Path = SCHEMA_FILE) -> Schema:
    return parse_schema(yaml.safe_load(path.read_text(encoding="utf-8")))


def column_problems(name: str, values: pd.Series, spec: ColumnSpec) -> list[str]:
    """Problems of one column: dtype, missing or infinite values, values out of range."""
    if not DTYPE_CHECKS[spec.dtype](values):
        return [f"column '{name}' has dtype {values.dtype}, expected {spec.dtype}"]
    problems = []
    missing = int(values.isna().sum())
    if missing:
        problems.append(f"column '{name}' has {missing} missing values (NaN)")
    infinite = int(np.isinf(values.to_numpy(dtype=float)).sum())
    if infinite:
        problems.append(f"column '{name}' has {infinite} infinite values")
    finite = values[np.isfinite(values.to_numpy(dtype=float))]
    if spec.minimum is not None and (finite < spec.minimum).any():
        problems.append(
            f"column '{name}' has {int((finite < spec.minimum).sum())} values below {spec.minimum} (min {finite.min()})"
        )
    if spec.maximum is not None and (finite > spec.maximum).any():
        problems.append(
            f"column '{name}' has {int((finite > spec.maximum).sum())} values above {spec.maximum} (max {finite.max()})"
        )
    return problems


def class_problems(target: pd.Series, schema: Schema) -> list[str]:
    """Classification only: no unknown label, and every class holds its minimum share."""
    if not schema.class_labels:
        return []
    problems = []
    unknown = sorted(set(target.dropna().unique().tolist()) - set(schema.class_labels))
    if unknown:
        problems.append(f"column '{TARGET}' has unknown labels {unknown}: expected {schema.class_labels}")
    shares = target.value_counts(normalize=True)
    for label in schema.class_labels:
        share = float(shares.get(label, 0.0))
        if share < schema.min_class_share:
            problems.append(
                f"class {label} is {share:.1%} of the rows, below the minimum "
                f"{schema.min_class_share:.1%}: the classes are out of balance"
            )
    return problems


def find_problems(frame: pd.DataFrame, schema: Schema) -> list[str]:
    """Every way ``frame`` breaks ``schema``; an empty list means the data is valid."""
    problems = []
    missing = [name for name in schema.columns if name not in frame.columns]
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    unexpected = [name for name in frame.columns if name not in schema.columns]
    if unexpected:
        problems.append(f"unexpected columns: {', '.join(map(str, unexpected))}")
    if len(frame) < schema.min_rows:
        problems.append(f"only {len(frame)} rows, the minimum is {schema.min_rows}")
    for name, spec in schema.columns.items():
        if name in frame.columns:
            problems.extend(column_problems(name, frame[name], spec))
    if TARGET in frame.columns:
        problems.extend(class_problems(frame[TARGET], schema))
    return problems


def validate(frame: pd.DataFrame, schema: Schema, source: str = "the data") -> dict[str, Any]:
    """Raise ``DataValidationError`` naming every problem; return a report when the data is valid."""
    problems = find_problems(frame, schema)
    if problems:
        raise DataValidationError(source, problems)
    return {"rows": len(frame), "columns": len(frame.columns), "problems": 0}


def main() -> None:
    frame = pd.read_csv(RAW_DATA)
    try:
        report = validate(frame, load_schema(), source=str(RAW_DATA))
    except DataValidationError as error:
        print(error, file=sys.stderr)
        raise SystemExit(1) from None
    VALIDATION_REPORT.parent.mkdir(parents=True, exist_ok=True)
    VALIDATION_REPORT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"validate: {report['rows']} rows x {report['columns']} columns match {SCHEMA_FILE}")


if __name__ == "__main__":
    main()
