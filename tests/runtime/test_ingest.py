"""Ingest: the bundled samples, file sources, the columns kept, and one clear line for each mistake."""

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from mlopsify_runtime import ingest
from mlopsify_runtime.config import RAW_DATA, DataParams, Params, PipelineError, run_step

TABLE = pd.DataFrame(
    {"id": [1, 2, 3], "size": [1.5, None, 3.0], "color": ["red", "blue", None], "label": [0, 1, 0]}
)


def test_snake_case_makes_identifiers() -> None:
    assert ingest.snake_case("mean concave points") == "mean_concave_points"
    assert ingest.snake_case(" Worst Area (mm2) ") == "worst_area_mm2"


@pytest.mark.parametrize("name", sorted(ingest.BUNDLED))
def test_bundled_samples_have_identifier_columns_and_a_target(name: str) -> None:
    frame = ingest.load_dataset(name)
    assert "target" in frame.columns
    assert all(str(column).isidentifier() for column in frame.columns)
    assert len(frame) > 100


def test_unknown_source_is_one_clear_line() -> None:
    with pytest.raises(PipelineError) as error:
        ingest.load_source(DataParams(source="iris"))
    assert str(error.value) == (
        "params.yaml data.source 'iris' is neither a bundled sample ['breast_cancer', 'diabetes', 'wine'] "
        "nor a CSV or Parquet file"
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_source_keeps_the_id_the_features_and_the_target(
    tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"table{suffix}"
    TABLE.to_csv(path, index=False) if suffix == ".csv" else TABLE.to_parquet(path, index=False)
    data = DataParams(source=str(path), target="label", id_column="id")
    frame = ingest.select_columns(ingest.load_source(data), data)
    assert list(frame.columns) == ["id", "size", "color", "label"]
    chosen = replace(data, features=["color"])
    assert list(ingest.select_columns(ingest.load_source(chosen), chosen).columns) == [
        "id",
        "color",
        "label",
    ]


def test_a_missing_target_column_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    TABLE.to_csv(path, index=False)
    data = DataParams(source=str(path), target="outcome")
    with pytest.raises(PipelineError) as error:
        ingest.select_columns(ingest.load_source(data), data)
    columns = "(id, size, color, label)"
    assert (
        str(error.value)
        == f"params.yaml data.target: 'outcome' not in the columns of {path} {columns}"
    )


def test_an_empty_file_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty, header_only = tmp_path / "empty.csv", tmp_path / "header.csv"
    empty.write_text("")
    header_only.write_text("size,label\n")

    def read_empty() -> None:
        ingest.read_table(empty)

    with pytest.raises(SystemExit) as exit_info:
        run_step(read_empty)
    assert exit_info.value.code == 1
    assert (
        capsys.readouterr().err
        == f"error: {empty} is empty: the table has no columns and no rows\n"
    )
    with pytest.raises(PipelineError, match=r"header.csv is empty: the table has no rows$"):
        ingest.read_table(header_only)


def test_main_writes_the_raw_csv(project: Path, params: Params) -> None:
    ingest.main()
    written = pd.read_csv(project / RAW_DATA)
    assert params.data.target in written.columns
    assert len(written) > 100
