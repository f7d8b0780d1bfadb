"""Batch inference: score a file of records with the champion model, write predictions as Parquet.

Each row of the output carries its row id (the input's ``row_id`` column, else the row's
position), the prediction (and class probabilities), and the registered model name and version
that made it. The model comes from the registry (``models:/<name>@<alias>`` of params.yaml
``mlflow:``) through the serving loader, so batch and online predictions are the same code.

    python -m PACKAGE.batch [--input data/processed/test.csv] [--output data/predictions/predictions.parquet]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .config import FEATURES_FILE, load_params, tracking_uri
from .serving.model import LoadedModel, load_model
from .serving.settings import Settings
from .spec import read_frame, to_matrix

BATCH_INPUT = Path("data/processed/test.csv")
BATCH_OUTPUT = Path("data/predictions/predictions.parquet")
ROW_ID = "row_id"


def load_champion(model_name: str, alias: str) -> LoadedModel:
    """The version that ``alias`` points at, with its feature spec.

    The pipeline's models/features.json gives the column types (categories stay text); without
    it, the champion's own fitted feature names decide the column order and every feature is
    a number. A spec whose features differ from the champion's is refused by the loader.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    with tempfile.TemporaryDirectory() as scratch:
        features = FEATURES_FILE if FEATURES_FILE.is_file() else Path(scratch) / "none.json"
        settings = Settings(model_uri=f"models:/{model_name}@{alias}", features_path=features)
        return load_model(settings)


def score(model: LoadedModel, records: pd.DataFrame) -> pd.DataFrame:
    """One output row per input row, in input order."""
    missing = [name for name in model.features if name not in records.columns]
    if missing:
        raise ValueError(f"the records lack the model's features {missing}: give every column in {model.features}")
    row_ids = records[ROW_ID] if ROW_ID in records.columns else pd.Series(np.arange(len(records)))
    predictions = model.predict(to_matrix(records, model.spec.to_dict()))
    out = pd.DataFrame({ROW_ID: row_ids.to_numpy(), "prediction": [p.value for p in predictions]})
    for label in model.classes:
        out[f"probability_{label}"] = [(p.probabilities or {})[str(label)] for p in predictions]
    out["model_name"] = model.info.name
    out["model_version"] = model.info.version
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="batch", description="score a CSV of records with the champion model")
    parser.add_argument("--input", type=Path, default=BATCH_INPUT)
    parser.add_argument("--output", type=Path, default=BATCH_OUTPUT)
    args = parser.parse_args(argv)
    params = load_params()
    model = load_champion(params.mlflow.model_name, params.mlflow.alias)
    records = read_frame(args.input).drop(columns=[params.data.target], errors="ignore")
    predictions = score(model, records)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(args.output, index=False)
    print(f"batch: {len(predictions)} predictions of {model.info.name} version {model.info.version} -> {args.output}")


if __name__ == "__main__":
    main()
