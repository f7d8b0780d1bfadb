"""`make tune`: the grid of parameters, its combinations, and the choice of the best experiment."""

import re
from typing import Any

import pytest

from mlopsify_runtime.config import PipelineError
from mlopsify_runtime.tune import (
    best_experiment,
    check_grid,
    combinations,
    grid_example,
    parse_grid,
)

PARAMS = {"model": {"C": 1.0, "max_iter": 1000}, "gate": {"min": {"roc_auc": 0.9}}}


def test_a_grid_is_every_combination_of_its_values() -> None:
    grid = check_grid(parse_grid("model.C=0.1,1 model.max_iter=500,1000"), PARAMS)
    assert grid == {"model.C": [0.1, 1], "model.max_iter": [500, 1000]}
    assert combinations(grid) == [
        {"model.C": 0.1, "model.max_iter": 500},
        {"model.C": 0.1, "model.max_iter": 1000},
        {"model.C": 1, "model.max_iter": 500},
        {"model.C": 1, "model.max_iter": 1000},
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model.C", "bad grid 'model.C': write each parameter as name=value,value"),
        ("model.C=0.1,,1", "bad grid 'model.C=0.1,,1': write each parameter as name=value,value"),
        ("model.gamma=1,2", "grid parameter 'model.gamma' is not a value in params.yaml"),
        ("model=1,2", "grid parameter 'model' is not a value in params.yaml"),
        ("", "the grid is empty"),
    ],
)
def test_a_bad_grid_says_what_to_write(text: str, message: str) -> None:
    with pytest.raises(PipelineError, match=f"^{message}"):
        check_grid(parse_grid(text), PARAMS)


def test_the_best_experiment_is_the_largest_or_for_errors_the_smallest() -> None:
    results: dict[str, dict[str, Any]] = {
        "a": {"metrics": {"roc_auc": 0.95, "rmse": 40.0}},
        "b": {"metrics": {"roc_auc": 0.97, "rmse": 45.0}},
        "c": {"metrics": {}},  # a failed experiment has no metrics
    }
    assert best_experiment(results, "roc_auc") == "b"
    assert best_experiment(results, "rmse") == "a"
    with pytest.raises(PipelineError, match="no experiment reported the metric 'f1'"):
        best_experiment(results, "f1")


def test_the_error_example_names_the_models_own_parameter() -> None:
    example = grid_example({"model": {"alpha": 1.0}})
    assert example == 'make tune GRID="model.alpha=0.1,1,10"'
    with pytest.raises(
        PipelineError, match=re.escape('(e.g. make tune GRID="model.alpha=0.1,1,10")')
    ):
        check_grid(parse_grid("model.C=1,2", example), {"model": {"alpha": 1.0}}, example)
