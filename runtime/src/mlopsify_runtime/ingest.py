"""Ingest: bring the table named by params.yaml `data.source` to data/raw/dataset.csv.

The source is a sample that scikit-learn ships (nothing is downloaded) or a CSV or Parquet file
that DVC tracks (`make data-import FILE=...` puts it under data/external/). Only the id column,
the features and the target are kept, in that order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from .config import RAW_DATA, DataParams, PipelineError, load_params, run_step
from .spec import few

BUNDLED: dict[str, Callable[..., Any]] = {
    "breast_cancer": load_breast_cancer,  # binary classification, 569 rows
    "diabetes": load_diabetes,  # regression, 442 rows
    "wine": load_wine,  # three classes, 178 rows
}
FILE_SUFFIXES = (".csv", ".parquet", ".pq")


def snake_case(name: str) -> str:
    """``'mean concave points'`` -> ``'mean_concave_points'``: columns as identifiers."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def load_dataset(name: str) -> pd.DataFrame:
    """The named bundled sample as one frame: snake_case features, label ``target``."""
    if name not in BUNDLED:
        raise PipelineError(f"unknown data set {name!r}: use one of {sorted(BUNDLED)}")
    frame: pd.DataFrame = BUNDLED[name](as_frame=True).frame
    return frame.rename(columns=snake_case)


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a frame; a missing, unreadable or empty file is a `PipelineError`."""
    if path.suffix.lower() not in FILE_SUFFIXES:
        raise PipelineError(f"{path}: unknown file type {path.suffix!r}: use one of {list(FILE_SUFFIXES)}")
    if not path.is_file():
        raise PipelineError(f"{path} does not exist: run `make data-import FILE=...` or `dvc pull`")
    try:
        frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise PipelineError(f"{path} is empty: the table has no columns and no rows") from None
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise PipelineError(f"{path} cannot be read: {str(error).splitlines()[0]}") from None
    if frame.empty:
        raise PipelineError(f"{path} is empty: the table has no rows")
    return frame


def load_source(data: DataParams) -> pd.DataFrame:
    """The table of `data.source`: a bundled sample when it names one, else a file."""
    if data.source in BUNDLED:
        return load_dataset(data.source)
    if Path(data.source).suffix.lower() not in FILE_SUFFIXES:
        raise PipelineError(
            f"params.yaml data.source {data.source!r} is neither a bundled sample {sorted(BUNDLED)} "
            f"nor a CSV or Parquet file"
        )
    return read_table(Path(data.source))


def feature_names(columns: list[str], data: DataParams) -> list[str]:
    """`data.features`, or every column but the target and the id column."""
    return data.features or [name for name in columns if name not in {data.target, data.id_column}]


def select_columns(frame: pd.DataFrame, data: DataParams) -> pd.DataFrame:
    """The id column (when set), the features and the target, in that order."""
    columns = [str(name) for name in frame.columns]
    frame.columns = pd.Index(columns)
    named = {"data.target": [data.target], "data.id_column": [data.id_column] if data.id_column else []}
    named["data.features"] = data.features
    for key, names in named.items():
        missing = [name for name in names if name not in columns]
        if missing:
            raise PipelineError(
                f"params.yaml {key}: {', '.join(map(repr, missing))} not in the columns of {data.source} "
                f"({few(columns)})"
            )
    features = feature_names(columns, data)
    if not features:
        raise PipelineError(f"{data.source} has no feature column besides the target {data.target!r}")
    kept = ([data.id_column] if data.id_column else []) + features + [data.target]
    return frame[kept]


def write_dataset(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def ingest(data: DataParams, path: Path = RAW_DATA) -> pd.DataFrame:
    frame = select_columns(load_source(data), data)
    write_dataset(frame, path)
    return frame


def main() -> None:
    params = load_params()
    frame = ingest(params.data)
    print(f"ingest: {len(frame)} rows of {params.data.source} -> {RAW_DATA}")


if __name__ == "__main__":
    run_step(main)
