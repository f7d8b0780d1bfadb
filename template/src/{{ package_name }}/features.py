"""Features: split the validated data into train and test sets under data/processed/."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from .config import RAW_DATA, TARGET, TEST_DATA, TRAIN_DATA, DataParams, load_params


def split(frame: pd.DataFrame, data: DataParams, task_type: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train and test sets; classification keeps the class shares equal in both."""
    stratify = frame[TARGET] if task_type == "classification" else None
    train, test = train_test_split(frame, test_size=data.test_size, random_state=data.random_state, stratify=stratify)
    return train, test


def write_splits(train: pd.DataFrame, test: pd.DataFrame, train_path: Path, test_path: Path) -> None:
    for frame, path in ((train, train_path), (test, test_path)):
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)


def main() -> None:
    params = load_params()
    train, test = split(pd.read_csv(RAW_DATA), params.data, params.task_type)
    write_splits(train, test, TRAIN_DATA, TEST_DATA)
    print(f"features: {len(train)} train rows -> {TRAIN_DATA}, {len(test)} test rows -> {TEST_DATA}")


if __name__ == "__main__":
    main()
