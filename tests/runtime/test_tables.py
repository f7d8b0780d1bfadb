"""Tables the bundled samples are not: each is imported, trained, gated, registered and served
in-process with the generated project's own features and model code, and a constant model in
its place fails the default gate naming the baseline.

The tables: a regression whose integer target is a price in the thousands, three text classes,
a date column in a CSV and a datetime column in a Parquet file, an id with a text column of
hundreds of values, and a 95/5 binary label with a boolean feature. What `make data-import`
decides for each (the task, and why) is checked on the way.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from serving_models import TestClient, post, wait_ready
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.pipeline import Pipeline
from yamllint import linter
from yamllint.config import YamlLintConfig

from mlopsify_runtime import evaluate, reference
from mlopsify_runtime.config import (
    FEATURES_FILE,
    MODEL_DIR,
    RAW_DATA,
    REGISTRATION_FILE,
    TEST_DATA,
    TRAIN_DATA,
    load_params,
)
from mlopsify_runtime.data_import import import_table
from mlopsify_runtime.serving import Settings, create_app
from mlopsify_runtime.serving.schemas import KIND_DESCRIPTIONS
from mlopsify_runtime.spec import Spec, read_frame, read_spec
from mlopsify_runtime.training import run_training
from mlopsify_runtime.validate import load_schema, validate

ROWS = 600


@dataclass(frozen=True)
class Table:
    file: str
    target: str
    task: str
    why: str  # what data-import says about the task
    kinds: dict[str, str]  # the kind of a feature in models/features.json and data/schema.yaml
    id_column: str | None = None


def prices(rng: np.random.Generator) -> pd.DataFrame:
    area = rng.uniform(30, 200, ROWS)
    rooms = rng.integers(1, 6, ROWS)
    city = rng.choice(["lyon", "nantes", "paris"], ROWS)
    price = (
        20_000
        + 2_500 * area
        + 8_000 * rooms
        + np.where(city == "paris", 150_000, 0)
        + rng.normal(0, 10_000, ROWS)
    )
    return pd.DataFrame(
        {"area": area.round(1), "rooms": rooms, "city": city, "price": price.astype(int)}
    )


def three_classes(rng: np.random.Generator) -> pd.DataFrame:
    x, y = rng.normal(size=ROWS), rng.normal(size=ROWS)
    species = np.where(x > 0.4, "setosa", np.where(y > 0, "versicolor", "virginica"))
    return pd.DataFrame({"x": x, "y": y, "species": species})


def daily_sales(rng: np.random.Generator, hours: bool) -> pd.DataFrame:
    days = pd.Timestamp("2022-01-03") + pd.to_timedelta(rng.integers(0, 900, ROWS), unit="D")
    when = days + pd.to_timedelta(rng.integers(8, 20, ROWS), unit="h") if hours else days
    weekend = when.dayofweek >= 5
    sales = (
        200
        + 120 * weekend
        + 15 * when.month
        + (4 * when.hour if hours else 0)
        + rng.normal(0, 10, ROWS)
    )
    frame = pd.DataFrame(
        {"day": when if hours else when.strftime("%Y-%m-%d"), "promo": rng.normal(size=ROWS)}
    )
    frame["sales"] = sales + 30 * frame["promo"]
    return frame


def customers(rng: np.random.Generator) -> pd.DataFrame:
    spend = rng.normal(100, 30, ROWS)
    return pd.DataFrame(
        {
            "customer": [f"C{number:05d}" for number in rng.permutation(ROWS)],
            "spend": spend,
            "street": [
                f"{number} rue {rng.choice(['haute', 'basse'])}"
                for number in rng.integers(1, 400, ROWS)
            ],
            "churned": np.where(spend + rng.normal(0, 10, ROWS) > 100, "yes", "no"),
        }
    )


def rare_fraud(rng: np.random.Generator) -> pd.DataFrame:
    amount = rng.normal(size=ROWS)
    fraud = (amount > np.quantile(amount, 0.95)).astype(int)
    return pd.DataFrame(
        {
            "amount": amount + rng.normal(0, 0.05, ROWS),
            "online": rng.random(ROWS) < 0.5,
            "fraud": fraud,
        }
    )


TABLES: dict[str, tuple[Table, Callable[[np.random.Generator], pd.DataFrame]]] = {
    "prices": (
        Table(
            "prices.csv",
            "price",
            "regression",
            "distinct integers, more than 20: a quantity",
            {"city": "category"},
        ),
        prices,
    ),
    "three-classes": (
        Table(
            "flowers.csv", "species", "classification", "it holds text: 3 classes", {"x": "number"}
        ),
        three_classes,
    ),
    "date-csv": (
        Table("sales.csv", "sales", "regression", "it holds fractional numbers", {"day": "date"}),
        lambda rng: daily_sales(rng, hours=False),
    ),
    "datetime-parquet": (
        Table(
            "sales.parquet",
            "sales",
            "regression",
            "it holds fractional numbers",
            {"day": "datetime"},
        ),
        lambda rng: daily_sales(rng, hours=True),
    ),
    "id-and-text": (
        Table(
            "customers.csv",
            "churned",
            "classification",
            "it holds text: 2 classes",
            {"street": "text"},
            "customer",
        ),
        customers,
    ),
    "imbalanced": (
        Table(
            "fraud.csv",
            "fraud",
            "classification",
            "it holds 2 distinct integers, at most 20: classes",
            {"online": "boolean"},
        ),
        rare_fraud,
    ),
}


@pytest.fixture
def task_type() -> str:
    """Every table starts from the default project (classification): data-import sets the task."""
    return "classification"


def team_module(project: Path, name: str) -> ModuleType:
    """The generated project's own `name`.py (src/<package>/), imported from its file."""
    path = next(project.glob(f"src/*/{name}.py"))
    spec = importlib.util.spec_from_file_location(f"team_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def constant(task_type: str, model_params: dict[str, Any], spec: Spec) -> Pipeline:
    """The model replaced by a constant: the most frequent class, or the median."""
    estimator = (
        DummyClassifier(strategy="most_frequent")
        if task_type == "classification"
        else DummyRegressor(strategy="median")
    )
    return Pipeline([("model", estimator)])


def served(record: dict[str, Any]) -> dict[str, Any]:
    settings = Settings(
        model_dir=MODEL_DIR.resolve(),
        features_path=FEATURES_FILE.resolve(),
        registration_path=REGISTRATION_FILE.resolve(),
        signing_public_key=Path("keys/absent.pub").resolve(),
        git_commit="abc1234",
    )
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        response = post(client, {"record": record})
        openapi = client.get("/openapi.json").json()
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    body["openapi"] = openapi
    return body


def request_record(spec: Spec, row: pd.Series) -> dict[str, Any]:
    """A test row as a client sends it: numbers as numbers, the rest as text, the id when there is one."""
    record: dict[str, Any] = {}
    for name in spec["features"]:
        record[name] = (
            float(row[name]) if spec["columns"][name]["type"] == "number" else str(row[name])
        )
    if spec.get("id_column"):
        record[spec["id_column"]] = str(row[spec["id_column"]])
    return record


@pytest.mark.parametrize("name", list(TABLES))
def test_a_table_passes_the_default_gate_and_a_constant_model_fails_it_naming_the_baseline(
    name: str, project: Path, variant: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    table, make = TABLES[name]
    frame = make(np.random.default_rng(3))
    path = project / "data" / "external" / table.file
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False) if table.file.endswith(".parquet") else frame.to_csv(
        path, index=False
    )

    said = import_table(path.relative_to(project), table.target, table.id_column, None)
    assert f"data-import: task {table.task} for the target '{table.target}' (" in said
    assert table.why in said
    params = load_params()
    assert params.task_type == table.task
    validate(read_frame(RAW_DATA), load_schema())  # the inferred schema holds its own data
    features, train = team_module(variant(), "features"), team_module(variant(), "train")
    features.write_splits(
        *features.split(read_frame(RAW_DATA), params.data, params.task_type), TRAIN_DATA, TEST_DATA
    )

    run_training(train.build_pipeline)
    evaluate.main()
    passed = capsys.readouterr().out
    assert (
        "quality gate passed (" in passed
        and f"baseline ({evaluate.BASELINES[table.task]})" in passed
    )
    report = json.loads(Path("reports/gate.json").read_text())
    assert report["baseline"]["model"] == evaluate.BASELINES[table.task]
    assert set(report["baseline"]["metrics"]) == set(report["challenger"]["metrics"])
    assert (
        "| metric | challenger | baseline | champion | tolerance |"
        in Path("reports/gate.md").read_text()
    )

    # Production is held to the gate the model passed: data-import left gate.min and gate.max
    # empty, and the live-quality alert's bounds come from the baseline's margins.
    gate = load_params().gate
    live = {
        (row["metric"], row["bound"]): row["value"]
        for row in reference.build()["thresholds"]
        if row["alert"] == "ModelLiveQualityBelowGate"
    }
    naive = report["baseline"]["metrics"]
    lower = {"rmse", "mae"}
    expected = {
        (name, "max" if name in lower else "min"): naive[name] - margin
        if name in lower
        else naive[name] + margin
        for name, margin in gate.plus.items()
    } | {
        (name, "max" if name in lower else "min"): naive[name] * margin
        for name, margin in gate.times.items()
    }
    assert gate.minimum == gate.maximum == {} and expected
    assert live == pytest.approx(expected)

    spec = read_spec(FEATURES_FILE)
    schema = yaml.safe_load(Path("data/schema.yaml").read_text())["columns"]
    for column, kind in table.kinds.items():
        assert spec["columns"][column].get("kind", spec["columns"][column]["type"]) == kind
        described = schema[column].get("description", "number: (its dtype)")
        assert described.startswith(f"{kind}: ") and (kind == "number") == (
            "description" not in schema[column]
        )
    assert table.id_column not in spec["features"] and spec.get("id_column") == table.id_column
    if name == "imbalanced":  # PR AUC and each class's recall, for the model and the baseline
        assert {"pr_auc", "recall_0", "recall_1", "min_recall"} <= set(
            report["baseline"]["metrics"]
        )
        assert report["baseline"]["metrics"]["min_recall"] == 0.0
    row = read_frame(TEST_DATA).iloc[0]
    answer = served(request_record(spec, row))
    if table.id_column:
        assert schema[table.id_column]["description"].startswith("id: ")
        assert answer[table.id_column] == str(row[table.id_column])
    assert answer["model_version"] == "1"
    record_schema = answer["openapi"]["components"]["schemas"]["Record"]["properties"]
    for column, kind in table.kinds.items():
        if kind in {"date", "datetime", "text", "boolean"}:
            assert record_schema[column]["description"] == KIND_DESCRIPTIONS[kind]

    run_training(constant)
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert f"(baseline: {evaluate.BASELINES[table.task]}; params.yaml gate.baseline." in err, err
    assert "alias 'champion' stays on version 1" in err


def test_data_import_writes_gates_that_fit_the_table(
    project: Path, variant: Callable[..., Path]
) -> None:
    """Prices: rmse within 0.8 of the mean's, tolerances on the price's scale, the model and the
    grid of a regression; 95/5: PR AUC and the lowest recall; TASK overrides the guess."""
    before = Path("params.yaml").read_text()
    for name, task in (("prices", None), ("imbalanced", None), ("three-classes", "regression")):
        table, make = TABLES[name]
        path = Path("data/external") / table.file
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = make(np.random.default_rng(3))
        if task:  # the classes as integers, which a regression could also read
            frame[table.target] = frame[table.target].map(
                {"setosa": 0, "versicolor": 1, "virginica": 2}
            )
        frame.to_csv(path, index=False)
        said = import_table(path, table.target, None, task)
        params = yaml.safe_load(Path("params.yaml").read_text())
        gate = params["gate"]
        # dvc.yaml's plots: what the template renders for the task (plots.py writes those files)
        rendered = yaml.safe_load((variant(params["task_type"]) / "dvc.yaml").read_text())
        evaluate_stage = yaml.safe_load(Path("dvc.yaml").read_text())["stages"]["evaluate"]
        assert evaluate_stage == rendered["stages"]["evaluate"]
        if name == "prices":
            assert params["task_type"] == "regression"
            assert gate["baseline"] == {"plus": {"r2": 0.1}, "times": {"rmse": 0.8}}
            assert gate["min"] == gate["max"] == {} and gate["tolerance"]["rmse"] > 100
            assert (params["model"], params["tune"]["grid"]) == (
                {"alpha": 1.0},
                {"model.alpha": "0.1,1,10"},
            )
        elif name == "imbalanced":
            assert params["task_type"] == "classification"
            assert gate["baseline"]["plus"] == {"roc_auc": 0.1, "pr_auc": 0.2, "min_recall": 0.2}
            assert (params["model"], params["tune"]["grid"]) == (
                {"C": 1.0, "max_iter": 1000},
                {"model.C": "0.1,1,10"},
            )
        else:
            assert (
                params["task_type"] == "regression"
                and "(TASK set it; TASK=... overrides it)" in said
            )
    # Every other section and comment is the file's own, and the project's yamllint passes it.
    after = Path("params.yaml").read_text()
    for kept in ("# Model tests beyond one number", "slices:\n", "mlflow:\n", "data:\n"):
        assert kept in before and kept in after
    own = yaml.safe_load((variant() / ".yamllint.yaml").read_text())
    own.pop("ignore-from-file")  # the project's .gitignore: no file here
    rules = YamlLintConfig(yaml.safe_dump(own))
    assert [str(problem) for problem in linter.run(after, rules)] == []
