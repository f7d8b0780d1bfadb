"""Validate: check data/raw/dataset.csv against the pandera schema data/schema.yaml.

Validation is lazy: every failure is collected, then reported one plain line per column and
check, with the number of failing values and a few examples (rows counted from 1 after the
header), and the step exits 1 so that DVC never trains on data unlike the data the model was
built for. `make schema` infers the schema again (schema.py) when the data changed on purpose.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.errors
import pandera.pandas as pa
import yaml

from .config import RAW_DATA, SCHEMA_FILE, VALIDATION_REPORT, PipelineError, run_step
from .spec import few, read_frame

EXAMPLES = 3
# Failures that the check of a column's type makes pointless to report again.
TYPE_CHECKS = ("coerce_dtype(", "dtype(")


class DataValidationError(PipelineError):
    """The data breaks the schema; ``problems`` lists every failure, one line each."""

    def __init__(self, source: str, schema: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        count = f"{len(problems)} failure{'s' if len(problems) > 1 else ''}"
        super().__init__(f"{source} does not match {schema} ({count}):\n{lines}")


def load_schema(path: Path = SCHEMA_FILE) -> pa.DataFrameSchema:
    """The pandera ``DataFrameSchema`` kept in `path`."""
    if not path.is_file():
        raise PipelineError(f"{path} does not exist: infer it from the data with `make schema`")
    try:
        return pa.DataFrameSchema.from_yaml(path)
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as error:
        raise PipelineError(f"{path} is not a pandera schema: {error}") from None


def example(value: object, index: object) -> str:
    return str(value) if not isinstance(index, int | float) or pd.isna(index) else f"row {int(index) + 1}: {value}"


def short_check(check: str) -> str:
    """A check as pandera names it, its list of values cut to a few and a count: `isin([...])`
    of 1,400 classes stays one readable line."""
    match = re.fullmatch(r"(\w+\(\[)(.*)(\]\))", check, re.S)
    if not match:
        return check
    values = [value.strip() for value in match.group(2).split(",")]
    return f"{match.group(1)}{few(values)}{match.group(3)}"


def failure_line(column: str, check: str, cases: pd.DataFrame) -> str:
    check = short_check(check)
    if check == "column_in_dataframe":
        return f"column '{cases['failure_case'].iloc[0]}' is missing"
    if check == "column_in_schema":
        return f"column '{cases['failure_case'].iloc[0]}' is not in the schema"
    if check.startswith("dtype(") and cases["index"].isna().all():
        return f"column '{column}' has dtype {cases['failure_case'].iloc[0]}, expected {check[6:-1]}"
    shown = ", ".join(example(row.failure_case, row.index) for row in cases.head(EXAMPLES).itertuples())
    return f"column '{column}', check {check}: {len(cases)} failing, e.g. {shown}"


def describe_failures(cases: pd.DataFrame) -> list[str]:
    """One line per column and check of pandera's failure cases; a column of the wrong type
    reports its type alone (its range checks would only fail again on the same values)."""
    cases = cases.astype({"check": str})
    cases["column"] = cases["column"].astype(object).where(cases["column"].notna(), "")
    mistyped = set(cases.loc[cases["check"].str.startswith(TYPE_CHECKS), "column"])
    lines = []
    for (column, name), group in cases.groupby(["column", "check"], sort=False):
        check = str(name)
        if column in mistyped and not check.startswith(TYPE_CHECKS):
            continue
        coerced = cases.loc[cases["column"] == column, "check"].str.startswith("coerce_dtype(").any()
        if check.startswith("dtype(") and coerced:  # the values that cannot be coerced say more
            continue
        lines.append(failure_line(str(column), str(check), group))
    return lines


def find_problems(frame: pd.DataFrame, schema: pa.DataFrameSchema) -> list[str]:
    """Every way ``frame`` breaks ``schema``; an empty list means the data is valid."""
    if frame.empty:
        return ["the table has no rows"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # pandas warnings from pandera's reports
            schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        return describe_failures(errors.failure_cases)
    return []


def validate(
    frame: pd.DataFrame, schema: pa.DataFrameSchema, source: str = "the data", schema_name: str = str(SCHEMA_FILE)
) -> dict[str, Any]:
    """Raise ``DataValidationError`` naming every failure; return a report when the data is valid."""
    problems = find_problems(frame, schema)
    if problems:
        raise DataValidationError(source, schema_name, problems)
    return {"rows": len(frame), "columns": len(frame.columns), "problems": 0}


def read_raw(path: Path) -> pd.DataFrame:
    try:
        return read_frame(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def main() -> None:
    report = validate(read_raw(RAW_DATA), load_schema(), source=str(RAW_DATA))
    VALIDATION_REPORT.parent.mkdir(parents=True, exist_ok=True)
    VALIDATION_REPORT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"validate: {report['rows']} rows x {report['columns']} columns match {SCHEMA_FILE}")


if __name__ == "__main__":
    run_step(main)
