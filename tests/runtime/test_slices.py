"""The gate's slices and robustness: metrics per group of one column, and after noise."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlopsify_runtime.config import PipelineError
from mlopsify_runtime.slices import groups, noisy_metrics, slice_failures, slice_metrics
from mlopsify_runtime.spec import describe


@pytest.fixture
def data() -> tuple[LogisticRegression, pd.DataFrame, dict[str, object]]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200), "site": ["a", "b"] * 100})
    # Site b's labels are noise: the model is good on site a only.
    frame["target"] = np.where(
        frame["site"] == "a", frame["x"] > 0, rng.integers(0, 2, 200) == 1
    ).astype(int)
    spec = describe(frame, ["x"], "target", "classification")
    model = LogisticRegression().fit(frame[["x"]], frame["target"])
    return model, frame, spec


def test_each_slice_has_its_metrics_and_row_count(
    data: tuple[LogisticRegression, pd.DataFrame, dict[str, object]],
) -> None:
    model, frame, spec = data
    slices = slice_metrics(model, frame, spec, "target", "classification", "site")
    assert sorted(slices) == ["site=a", "site=b"]
    assert slices["site=a"]["rows"] == 100
    assert slices["site=a"]["accuracy"] > 0.9 > slices["site=b"]["accuracy"]


def test_a_slice_below_its_minimum_fails_the_gate(
    data: tuple[LogisticRegression, pd.DataFrame, dict[str, object]],
) -> None:
    model, frame, spec = data
    slices = slice_metrics(model, frame, spec, "target", "classification", "site")
    failures = slice_failures(slices, {"accuracy": 0.9})
    assert len(failures) == 1
    assert failures[0].startswith("slice site=b: accuracy = 0.")
    assert failures[0].endswith(
        "is below the slice minimum 0.9 (params.yaml slices.min.accuracy, 100 rows)"
    )


def test_a_numeric_column_is_cut_into_quartiles_and_an_unknown_one_refused() -> None:
    frame = pd.DataFrame({"age": range(100)})
    assert groups(frame, "age").nunique() == 4
    with pytest.raises(PipelineError, match=r"slices\.column 'sex' is not a column of the data"):
        groups(frame, "sex")


def test_noise_changes_the_metrics_of_a_sharp_model(
    data: tuple[LogisticRegression, pd.DataFrame, dict[str, object]],
) -> None:
    model, frame, spec = data
    clean = slice_metrics(model, frame, spec, "target", "classification", "site")
    noisy = noisy_metrics(model, frame, spec, "target", "classification", 0.5)
    assert set(noisy) == {"accuracy", "f1", "roc_auc"}
    assert noisy_metrics(model, frame, spec, "target", "classification", 0.0)[
        "accuracy"
    ] == pytest.approx((clean["site=a"]["accuracy"] + clean["site=b"]["accuracy"]) / 2)
