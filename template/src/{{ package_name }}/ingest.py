"""Ingest: write a sample data set that scikit-learn ships (no download) to data/raw/."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes

from .config import RAW_DATA, TARGET, load_params

LOADERS: dict[str, Callable[..., Any]] = {
    "breast_cancer": load_breast_cancer,
    "diabetes": load_diabetes,
}


def snake_case(name: str) -> str:
    """``'mean concave points'`` -> ``'mean_concave_points'``: columns as identifiers."""
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def load_dataset(name: str) -> pd.DataFrame:
    """The named scikit-learn data set as one frame: snake_case features, label ``target``."""
    if name not in LOADERS:
        raise ValueError(f"unknown data set {name!r}: use one of {sorted(LOADERS)}")
    frame: pd.DataFrame = LOADERS[name](as_frame=True).frame
    frame = frame.rename(columns=snake_case)
    return frame.rename(columns={"target": TARGET})


def write_dataset(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def main() -> None:
    params = load_params()
    frame = load_dataset(params.data.dataset)
    write_dataset(frame, RAW_DATA)
    print(f"ingest: {len(frame)} rows of {params.data.dataset} -> {RAW_DATA}")


if __name__ == "__main__":
    main()
