"""Schema: infer data/schema.yaml (a pandera DataFrameSchema) from the ingested data.

`make schema` runs ingest, then this: every column of data/raw/dataset.csv with its dtype, whether
it may be missing, and for numbers the range seen; the target of a classifier with its classes.
The description of each feature that is not a plain number names its kind (kinds.py: what
the model makes of it), the id column's that it is carried, never a feature.
Review the file and commit it: from then on `validate` holds new data to it.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .config import RAW_DATA, SCHEMA_FILE, load_params, run_step
from .kinds import DESCRIPTIONS, column_kind
from .spec import json_value

ID_DESCRIPTION = "id: identifies a row, carried for joins and echoed by the service, never a feature"

HEADER = """\
# Expected shape of data/raw/dataset.csv: a pandera DataFrameSchema, inferred by `make schema`
# from {rows} rows of {source}. The validate stage fails the pipeline, naming every failure, when
# the data breaks a rule here. Ranges are those seen in the data: widen or tighten them with
# the domain experts, and infer again (`make schema`) when the data changes on purpose.
"""


def rounded_out(value: float, *, up: bool) -> float:
    """`value` rounded to 10 significant digits, up or down: a readable bound that still holds it."""
    exact = Decimal(repr(value))
    step = Decimal(1).scaleb(exact.adjusted() - 9)
    return float(exact.quantize(step, rounding=ROUND_CEILING if up else ROUND_FLOOR))


def infer(frame: pd.DataFrame, target: str, task_type: str, id_column: str | None = None) -> dict[str, Any]:
    """The schema of `frame` as pandera's YAML mapping: no index, no other columns, each column's
    kind, and the classes of a classification target instead of its range."""
    import pandera.pandas as pa

    raw: dict[str, Any] = yaml.safe_load(pa.infer_schema(frame).to_yaml() or "{}")
    for name, column in (raw.get("columns") or {}).items():
        # pandera writes a range with fewer digits than the data has, so the extremes would fail
        # it: the data's extremes rounded outward to 10 significant digits instead (a CSV round
        # trip also moves the last digits).
        if column and "greater_than_or_equal_to" in column:
            column["greater_than_or_equal_to"] = rounded_out(float(frame[name].min()), up=False)
        if column and "less_than_or_equal_to" in column:
            column["less_than_or_equal_to"] = rounded_out(float(frame[name].max()), up=True)
        if name == id_column:
            column["description"] = ID_DESCRIPTION
        elif name != target and (kind := column_kind(frame[name])) != "number":  # a number's dtype says it
            column["description"] = f"{kind}: {DESCRIPTIONS[kind]}"
    raw["index"] = None
    raw["strict"] = True
    if task_type == "classification":
        column = raw["columns"][target]
        for bound in ("greater_than_or_equal_to", "less_than_or_equal_to"):
            column.pop(bound, None)
        column["isin"] = [json_value(label) for label in sorted(frame[target].dropna().unique())]
    return raw


def write_schema(raw: dict[str, Any], path: Path, rows: int, source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(raw, sort_keys=False, default_flow_style=None, width=120)
    path.write_text(HEADER.format(rows=rows, source=source) + body, encoding="utf-8")


def infer_raw(target: str, task_type: str, source: str, id_column: str | None = None) -> int:
    """Infer data/schema.yaml from data/raw/dataset.csv read as validate reads it; returns its columns."""
    frame = pd.read_csv(RAW_DATA)  # types afresh, not those of the schema being replaced
    write_schema(infer(frame, target, task_type, id_column), SCHEMA_FILE, len(frame), source)
    return len(frame.columns)


def main() -> None:
    params = load_params()
    columns = infer_raw(params.data.target, params.task_type, params.data.source, params.data.id_column)
    print(f"schema: {columns} columns of {RAW_DATA} -> {SCHEMA_FILE}")


if __name__ == "__main__":
    run_step(main)
