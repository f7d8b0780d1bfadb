"""Column kinds: what a column is, the features the model makes of it, how the service takes it and
how drift bins it; and the task that data-import reads from a target."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from serving_models import TestClient, post, save_model, wait_ready
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlopsify_runtime.data_import import infer_task
from mlopsify_runtime.kinds import HASH_BUCKETS, calendar, column_kind, derived_parts, hashed
from mlopsify_runtime.reference import reference_statistics
from mlopsify_runtime.serving import create_app
from mlopsify_runtime.serving.drift import DriftTracker
from mlopsify_runtime.spec import describe, few, model_input, number_indices, to_matrix


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (pd.Series([1.5, 2.0, None]), "number"),
        (pd.Series([True, False, True]), "boolean"),
        (pd.Series(["True", "false", None]), "boolean"),
        (pd.Series(pd.to_datetime(["2024-01-01", "2024-03-05"])), "date"),
        (pd.Series(pd.to_datetime(["2024-01-01 10:30", "2024-03-05 00:00"])), "datetime"),
        (pd.Series(["2024-01-01 10:30", "2024-03-05"]), "datetime"),
        (pd.Series(["2024-01-01", None, "2023-12-31"]), "date"),
        (
            pd.Series(["2024-01-01 00:00:00", "2023-12-31 00:00:00"]),
            "date",
        ),  # a Parquet date through CSV
        (pd.Series(["2024-01-01 00:00:00+00:00"]), "date"),  # a UTC Parquet date through CSV
        (pd.Series(["2024-01-01T08:15", "2023-12-31 23:59:59"]), "datetime"),
        (pd.Series(["red", "blue", None]), "category"),
        (pd.Series([f"street {i}" for i in range(150)]), "text"),
        (pd.Series(["2024-01-01", "soon"]), "category"),  # not every value is a date
    ],
)
def test_a_column_s_kind_comes_from_its_dtype_and_values(values: pd.Series, kind: str) -> None:
    assert column_kind(values) == kind


def test_calendar_features_and_hashed_texts() -> None:
    dates = calendar(np.array([["2024-03-09 18:00:00"], [None]], dtype=object), hour=True)
    assert dates[0].tolist() == [
        2024.0,
        3.0,
        5.0,
        18.0,
        19791.75,
    ]  # a Saturday, 19,791.75 days after 1970
    assert np.isnan(dates[1]).all()
    texts = hashed(np.array([["a"], ["a"], ["b"], [None]], dtype=object))
    assert texts.shape == (4, HASH_BUCKETS) and texts[0].sum() == 1 and (texts[0] == texts[1]).all()
    assert texts[3].sum() == 0 and not (texts[0] == texts[2]).all()


def test_booleans_are_numbers_and_only_categories_are_one_hot() -> None:
    frame = pd.DataFrame(
        {
            "flag": [True, False, True],
            "day": ["2024-01-01", "2024-01-02", None],
            "colour": ["red", "blue", "red"],
            "label": [1, 0, 1],
        }
    )
    spec = describe(frame, ["flag", "day", "colour"], "label", "classification")
    assert spec["columns"]["flag"] == {"type": "number", "kind": "boolean"}
    assert spec["columns"]["day"] == {"type": "category", "kind": "date", "nullable": True}
    assert number_indices(spec) == [0]
    assert to_matrix(frame, spec)[:, 0].tolist() == [1.0, 0.0, 1.0]
    assert [name for name, _, columns in derived_parts(spec)] == ["dates"]


@pytest.mark.parametrize(
    ("values", "task", "why"),
    [
        (
            pd.Series(np.arange(1400) * 7 + 1000),
            "regression",
            "it holds 1,400 distinct integers, more than 20: a quantity",
        ),
        (
            pd.Series([0, 1, 2, 1, 0]),
            "classification",
            "it holds 3 distinct integers, at most 20: classes",
        ),
        (pd.Series([0.5, 1.25, 3.0]), "regression", "it holds fractional numbers"),
        (pd.Series(["yes", "no", None]), "classification", "it holds text: 2 classes"),
        (pd.Series([True, False]), "classification", "it holds booleans: 2 classes"),
    ],
)
def test_the_task_comes_from_the_target(values: pd.Series, task: str, why: str) -> None:
    assert infer_task(values) == (task, why)


def test_a_list_in_a_message_is_cut_to_a_few_and_a_count() -> None:
    assert few(list(range(1400))) == "0, 1, 2, 3, 4 and 1,395 more"
    assert few(["a", "b"]) == "a, b"


def test_drift_bins_a_date_by_its_days_and_a_text_by_its_hash() -> None:
    rng = np.random.default_rng(0)
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, 400), unit="D")
    frame = pd.DataFrame(
        {
            "day": days.strftime("%Y-%m-%d"),
            "street": [f"{i} main street" for i in rng.integers(0, 300, 400)],
        }
    )
    frame["value"] = 1.0
    spec = describe(frame, ["day", "street"], "value", "regression")
    reference = reference_statistics(frame, spec, bins=5)
    assert reference["day"]["kind"] == "date" and len(reference["day"]["edges"]) == 4
    assert (
        reference["street"]["kind"] == "text"
        and len(reference["street"]["shares"]) == HASH_BUCKETS + 1
    )

    same = DriftTracker(reference, len(frame), 400, 50)
    same.observe(to_matrix(frame, spec))
    later = frame.assign(day=(days + pd.Timedelta(days=400)).strftime("%Y-%m-%d"))
    shifted = DriftTracker(reference, len(frame), 400, 50)
    shifted.observe(to_matrix(later, spec))
    assert same.scores()["day"] < 0.05 < 1 < shifted.scores()["day"]
    assert same.scores()["street"] < 0.2
    assert same.unseen.tolist() == [0, 0]  # a text is never "unseen": it has no categories


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A regressor with a nullable number, a date and an id column."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"order": [f"O{i}" for i in range(80)], "size": rng.normal(size=80)})
    frame.loc[::7, "size"] = np.nan
    frame["day"] = (
        pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 90, 80), unit="D")
    ).strftime("%Y-%m-%d")
    frame["value"] = frame["size"].fillna(0) * 3 + 1
    spec = describe(frame, ["size", "day"], "value", "regression", "order")
    parts = [
        (
            "numbers",
            make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
            number_indices(spec),
        ),
        *derived_parts(spec),
    ]
    model = make_pipeline(ColumnTransformer(parts), LinearRegression()).fit(
        model_input(frame, spec), frame["value"]
    )
    settings = save_model(
        tmp_path_factory.mktemp("kinds"), "regression", model, ["size", "day"], frame, "order"
    )
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        yield client


def test_the_service_echoes_the_id_and_takes_a_record_without_its_nullable_feature(
    service: TestClient,
) -> None:
    one = post(service, {"record": {"order": "A-17", "day": "2024-02-01"}})
    assert one.status_code == 200, one.text
    assert one.json()["order"] == "A-17"
    batch = post(
        service,
        {
            "records": [
                {"size": 1.0, "day": "2024-02-01", "order": 5},
                {"size": None, "day": "2024-02-02"},
            ]
        },
    )
    assert batch.status_code == 200, batch.text
    first, second = batch.json()["predictions"]
    assert first["order"] == 5 and "order" not in second
    missing = post(service, {"record": {"size": 1.0}})
    assert missing.status_code == 422
    assert missing.json()["errors"] == [
        {"loc": "record.day", "msg": "field required", "type": "missing"}
    ]


def test_the_openapi_document_describes_each_kind_and_the_id(service: TestClient) -> None:
    record = service.get("/openapi.json").json()["components"]["schemas"]["Record"]
    assert record["required"] == ["day"]
    assert record["properties"]["day"]["description"] == "A date as text, YYYY-MM-DD."
    assert "never a feature" in record["properties"]["order"]["description"]
