"""Features: split the validated data into train and test sets under data/processed/.

Imputing, scaling and encoding happen inside the model's scikit-learn Pipeline (train.py), so
that the service, which gets raw records, applies exactly what training applied.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from mlopsify_runtime.config import RAW_DATA, TEST_DATA, TRAIN_DATA, DataParams, PipelineError, load_params, run_step
from mlopsify_runtime.spec import read_frame
from sklearn.model_selection import train_test_split


def split(frame: pd.DataFrame, data: DataParams, task_type: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and test sets; classification keeps the class shares equal in both."""
    stratify = frame[data.target] if task_type == "classification" else None
    try:
        train, test = train_test_split(
            frame, test_size=data.test_size, random_state=data.random_state, stratify=stratify
        )
    except ValueError as error:  # too few rows, or a class with a single row
        raise PipelineError(f"cannot split {len(frame)} rows into train and test: {error}") from None
    return train, test


def write_splits(train: pd.DataFrame, test: pd.DataFrame, train_path: Path, test_path: Path) -> None:
    for frame, path in ((train, train_path), (test, test_path)):
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)


def main() -> None:
    params = load_params()
    train, test = split(read_frame(RAW_DATA), params.data, params.task_type)
    write_splits(train, test, TRAIN_DATA, TEST_DATA)
    print(f"features: {len(train)} train rows -> {TRAIN_DATA}, {len(test)} test rows -> {TEST_DATA}")


if __name__ == "__main__":
    run_step(main)
