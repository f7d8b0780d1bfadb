"""Validation with the pandera schema: each kind of bad data is refused with the exact lines a person reads."""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from mlopsify_runtime import ingest, validate
from mlopsify_runtime import schema as inference
from mlopsify_runtime.config import RAW_DATA, VALIDATION_REPORT, Params, run_step
from mlopsify_runtime.validate import DataValidationError, find_problems


def first_feature(params: Params, schema: Any) -> str:
    """The first float feature that may not be missing (every feature of the bundled samples)."""
    return next(
        name
        for name, column in schema.columns.items()
        if name not in {params.data.target, params.data.id_column}
        and str(column.dtype) == "float64"
        and not column.nullable
    )


def test_valid_data_has_no_problems(dataset: pd.DataFrame, schema: Any) -> None:
    assert find_problems(dataset, schema) == []


def test_a_missing_target_and_an_unexpected_column(
    dataset: pd.DataFrame, schema: Any, params: Params
) -> None:
    broken = dataset.drop(columns=[params.data.target]).assign(surprise=1.0)
    assert find_problems(broken, schema) == [
        "column 'surprise' is not in the schema",
        f"column '{params.data.target}' is missing",
    ]


def test_a_wrong_type_names_the_values(dataset: pd.DataFrame, schema: Any, params: Params) -> None:
    feature = first_feature(params, schema)
    dataset[feature] = dataset[feature].astype(object)
    dataset.loc[dataset.index[1], feature] = "text"
    expected = str(schema.columns[feature].dtype)
    assert find_problems(dataset, schema) == [
        f"column '{feature}', check coerce_dtype('{expected}'): 1 failing, e.g. row 2: text"
    ]


def test_an_empty_table(dataset: pd.DataFrame, schema: Any) -> None:
    assert find_problems(dataset.head(0), schema) == ["the table has no rows"]


def test_missing_and_out_of_range_values(
    dataset: pd.DataFrame, schema: Any, params: Params
) -> None:
    feature = first_feature(params, schema)
    dataset[feature] = dataset[feature].astype(float)
    dataset.loc[dataset.index[0], feature] = np.nan
    dataset.loc[dataset.index[2], feature] = 1e9
    problems = find_problems(dataset, schema)
    assert problems[0] == f"column '{feature}', check not_nullable: 1 failing, e.g. row 1: nan"
    assert problems[1].startswith(f"column '{feature}', check less_than_or_equal_to(")
    assert problems[1].endswith("): 1 failing, e.g. row 3: 1000000000.0")


@pytest.mark.parametrize("task_type", ["classification"])
def test_unknown_label(dataset: pd.DataFrame, schema: Any, params: Params) -> None:
    target = params.data.target
    dataset[target] = dataset[target].astype(object)
    dataset.loc[dataset.index[0], target] = "seven"
    problems = find_problems(dataset, schema)
    assert len(problems) == 1
    assert problems[0].startswith(f"column '{target}', check ")
    assert problems[0].endswith("1 failing, e.g. row 1: seven")


def test_the_inferred_schema_accepts_its_data_and_refuses_others(
    dataset: pd.DataFrame, params: Params
) -> None:
    import pandera.pandas as pa

    raw = inference.infer(dataset, params.data.target, params.task_type)
    inferred = pa.DataFrameSchema.from_yaml(yaml.safe_dump(raw))
    assert find_problems(dataset, inferred) == []
    missing = [f"column '{params.data.target}' is missing"]
    assert find_problems(dataset.drop(columns=[params.data.target]), inferred) == missing


def test_error_lists_every_problem(dataset: pd.DataFrame, schema: Any, params: Params) -> None:
    broken = dataset.drop(columns=[params.data.target]).assign(surprise=1.0)
    with pytest.raises(
        DataValidationError, match=r"the data does not match data/schema.yaml \(2 failures\)"
    ):
        validate.validate(broken, schema)


def test_main_exits_non_zero_on_bad_data(
    project: Path, params: Params, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest.main()
    frame = pd.read_csv(RAW_DATA).drop(columns=[params.data.target])
    frame.to_csv(RAW_DATA, index=False)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_step(validate.main)
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == (
        f"error: {RAW_DATA} does not match data/schema.yaml (1 failure):\n"
        f"  - column '{params.data.target}' is missing\n"
    )
    assert not (project / VALIDATION_REPORT).exists()


def test_main_writes_a_report_on_good_data(project: Path) -> None:
    ingest.main()
    validate.main()
    assert (project / VALIDATION_REPORT).is_file()


def test_a_check_of_many_values_stays_one_short_line() -> None:
    import pandera.pandas as pa

    many = pa.DataFrameSchema({"price": pa.Column(int, pa.Check.isin(list(range(1400))))})
    assert find_problems(pd.DataFrame({"price": [5000, 1]}), many) == [
        "column 'price', check isin([0, 1, 2, 3, 4 and 1,395 more]): 1 failing, e.g. row 1: 5000"
    ]
