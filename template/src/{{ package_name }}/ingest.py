"""Ingest: where this project's table comes from, which is this team's to change.

``load`` returns the raw table. By default it reads params.yaml ``data.source``: a sample that
scikit-learn ships or a CSV or Parquet file that DVC tracks (`make data-import FILE=...`). Read
from a database or an API here instead; the runtime then keeps the id column, the features and
the target, in that order, and writes data/raw/dataset.csv.
"""

from __future__ import annotations

import pandas as pd
from mlopsify_runtime.config import RAW_DATA, DataParams, load_params, run_step
from mlopsify_runtime.ingest import load_source, select_columns, write_dataset


def load(data: DataParams) -> pd.DataFrame:
    """The raw table named by params.yaml ``data.source``."""
    return load_source(data)


def main() -> None:
    params = load_params()
    frame = select_columns(load(params.data), params.data)
    write_dataset(frame, RAW_DATA)
    print(f"ingest: {len(frame)} rows of {params.data.source} -> {RAW_DATA}")


if __name__ == "__main__":
    run_step(main)
