"""Batch inference: the champion model scores a file of records into Parquet with its version and row ids."""

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mlopsify_runtime import batch, evaluate
from mlopsify_runtime.config import REGISTRATION_FILE, TEST_DATA, load_params
from mlopsify_runtime.spec import read_frame


def test_batch_stage_stays_out_of_the_training_pipeline(rendered_project: Path) -> None:
    training = yaml.safe_load((rendered_project / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    inference = yaml.safe_load(
        (rendered_project / "inference" / "dvc.yaml").read_text(encoding="utf-8")
    )["stages"]
    assert "batch" not in training
    assert inference["batch"]["cmd"] == "python -m mlopsify_runtime.batch"


def test_batch_scores_with_the_champion_and_names_missing_features(
    project: Path, train: Callable[[], None]
) -> None:
    train()
    evaluate.main()
    version = json.loads((project / REGISTRATION_FILE).read_text())["version"]
    records = read_frame(TEST_DATA).drop(columns=[load_params().data.target])
    records.insert(0, "row_id", [f"r{i}" for i in range(len(records))])
    records.to_csv(project / "records.csv", index=False)
    batch.main(["--input", "records.csv", "--output", "out/predictions.parquet"])
    scored = pd.read_parquet(project / "out" / "predictions.parquet")
    assert scored["row_id"].tolist() == records["row_id"].tolist()
    assert set(scored["model_version"]) == {version}
    assert len(scored) == len(records)
    assert scored["prediction"].notna().all()
    pd.DataFrame({"row_id": [1]}).to_csv(project / "records.csv", index=False)
    with pytest.raises(ValueError, match="the records lack the model's features"):
        batch.main(["--input", "records.csv", "--output", "out.parquet"])
