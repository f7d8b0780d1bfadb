"""A team's own data, end to end in generated projects: binary, multiclass, regression and mixed.

Each variant builds its table from a data set that scikit-learn ships (or, for the mixed
numeric and categorical frame with missing values, one made here; nothing is downloaded),
brings it in with `make data-import` (DVC tracks it, pandera infers the schema, the task is
read from the target: the regression's integer prices in the thousands switch a project made
for classification), then runs `make pipeline` (train, gate against the baseline, register)
and `make test`, and serves the model on 127.0.0.1. The kinds of columns beyond numbers and
categories, and each table's gate against a constant model, are the runtime's tests
(tests/runtime/test_tables.py).
The projects of a module share one generated environment (VENV); each variant renders once.
This repository's environment has no pandas: what needs it runs in the generated one.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import isolated_home, run

from mlopsify import TemplateSource, new_project

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Variant:
    name: str
    file: str  # the file that `make data-import` brings in
    target: str
    answers: dict[str, str]
    id_column: str | None = None
    task: str = "classification"  # what data-import reads from the target


VARIANTS = {
    "binary": Variant("binary", "tumours.csv", "diagnosis", {}, id_column="patient"),
    "multiclass": Variant("multiclass", "wines.parquet", "cultivar", {}),
    "regression": Variant("regression", "prices.csv", "price", {}, task="regression"),
    "mixed": Variant("mixed", "customers.csv", "churned", {}, id_column="customer_id"),
}

# Writes a variant's table (argv: variant name, path).
TABLE_SCRIPT = """
import sys
import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

name, path = sys.argv[1], sys.argv[2]
if name == "binary":
    frame = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "diagnosis"})
    frame.insert(0, "patient", range(1, len(frame) + 1))
elif name == "multiclass":
    frame = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
    frame.columns = [column.replace("/", "_") for column in frame.columns]
elif name == "regression":  # whole prices in the thousands: integers, but a quantity
    frame = load_diabetes(as_frame=True).frame.rename(columns={"target": "price"})
    frame["price"] = (frame["price"] * 100).round().astype(int)
else:  # numbers and categories, some missing, and a label that depends on both
    rows = 800
    rng = np.random.default_rng(7)
    plan = rng.choice(["basic", "plus", "premium"], size=rows, p=[0.5, 0.3, 0.2])
    region = rng.choice(["north", "south", "east", "west"], size=rows)
    usage = rng.normal(50.0, 15.0, size=rows)
    score = (usage - 50) / 8 + np.where(plan == "basic", 2.5, -1.5) + np.where(region == "west", -2.0, 0.5)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(10_000, 10_000 + rows),
            "usage": usage.round(2),
            "tenure": rng.integers(1, 120, size=rows),
            "plan": plan,
            "region": region,
            "support_calls": rng.poisson(2.0, size=rows).astype(float),
            "churned": np.where(score > 0, "yes", "no"),
        }
    )
    frame.loc[rng.choice(rows, size=rows // 25, replace=False), "region"] = None
    frame.loc[rng.choice(rows, size=rows // 25, replace=False), "support_calls"] = np.nan
if path.endswith(".parquet"):
    frame.to_parquet(path, index=False)
else:
    frame.to_csv(path, index=False)
"""

# PSI of the test split (twice over) with the service's drift tracker and the pipeline's
# reference; argv: "same", or "shifted" (the plan column moved to premium and an unseen plan).
DRIFT_SCRIPT = """
import json, sys
from pathlib import Path
import pandas as pd
from mlopsify_runtime.serving.drift import DriftTracker
from mlopsify_runtime.spec import read_frame, read_spec, to_matrix

config = json.loads(Path("models/monitoring.json").read_text())
frame = read_frame(Path("data/processed/test.csv"))
frame = pd.concat([frame] * 2, ignore_index=True)
if sys.argv[1] == "shifted":
    frame["plan"] = ["platinum" if i % 3 == 0 else "premium" for i in range(len(frame))]
tracker = DriftTracker(config["reference"], config["training_rows"], len(frame), 50)
tracker.observe(to_matrix(frame, read_spec(Path("models/features.json"))))
print(json.dumps({{"scores": tracker.scores(), "unseen": dict(zip(tracker.features, tracker.unseen.tolist()))}}))
"""

# The served model's estimator, loaded as the service loads it, on the array the service hands it.
PREDICT_SCRIPT = """
import json
from pathlib import Path
import numpy as np
import yaml
from mlopsify_runtime.serving.model import _load_estimator

model_dir = Path("models/model")
model = _load_estimator(model_dir, yaml.safe_load((model_dir / "MLmodel").read_text()))
rows = np.array([[48.0, 30.0, "basic", None, None], [70.0, 5.0, "gold", "west", 1.0]], dtype=object)
print(json.dumps(model.predict(rows).tolist()))
"""


@dataclass
class Workspace:
    root: Path
    template_dir: Path
    venv: Path

    def make(
        self, project: Path, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run("make", *args, f"VENV={self.venv}", cwd=project, check=check, timeout=1200)

    def python(
        self, project: Path, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run(self.venv / "bin" / "python", *args, cwd=project, check=check, timeout=300)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, template_dir: Path) -> Iterator[Workspace]:
    """A home of its own and one environment that every project of the module shares."""
    root = tmp_path_factory.mktemp("own-data")
    with isolated_home(root):
        yield Workspace(root, template_dir, root / "venv")


def prepared(workspace: Workspace, variant: Variant) -> Path:
    """A rendered project whose pipeline ran on the variant's imported table."""
    project = new_project(
        workspace.root / variant.name,
        data=variant.answers,
        defaults=True,
        template=TemplateSource.at(workspace.template_dir),
    )
    workspace.make(project, "setup")  # the shared environment, plus this project's package
    table = workspace.root / variant.file
    workspace.python(project, "-c", TABLE_SCRIPT, variant.name, str(table))
    extra = [f"ID={variant.id_column}"] if variant.id_column else []
    imported = workspace.make(
        project, "data-import", f"FILE={table}", f"TARGET={variant.target}", *extra
    )
    assert f"data-import: data/external/{variant.file} (" in imported.stdout
    assert (
        f"data-import: task {variant.task} for the target '{variant.target}' (" in imported.stdout
    )
    params = (project / "params.yaml").read_text(encoding="utf-8")
    assert f"\ntask_type: {variant.task}\n" in params
    assert (project / "data" / "external" / f"{variant.file}.dvc").is_file()
    workspace.make(project, "pipeline")
    return project


def spec_of(project: Path) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(
        (project / "models" / "features.json").read_text(encoding="utf-8")
    )
    return spec


def check_gate_and_registry(project: Path, task_type: str, classes: list[Any] | None) -> None:
    metrics = json.loads((project / "metrics" / "metrics.json").read_text(encoding="utf-8"))
    expected = (
        {"accuracy", "f1", "roc_auc"} if task_type == "classification" else {"r2", "rmse", "mae"}
    )
    assert set(metrics) == expected
    registration = json.loads(
        (project / "models" / "registration.json").read_text(encoding="utf-8")
    )
    assert registration["version"] == "1"
    spec = spec_of(project)
    assert spec["task_type"] == task_type
    assert spec.get("classes") == classes


def number_or_text(value: str) -> float | str | None:
    if value == "":
        return None
    try:
        return float(value)
    except ValueError:
        return value


def raw_records(project: Path, rows: int = 5) -> list[dict[str, Any]]:
    """Rows of the project's test split as raw JSON records (numbers, strings, None when missing)."""
    features = spec_of(project)["features"]
    with (project / "data" / "processed" / "test.csv").open(encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))[:rows]
    return [{name: number_or_text(record[name]) for name in features} for record in records]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post(base: str, path: str, body: object) -> tuple[int, Any]:
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def serve(workspace: Workspace) -> Iterator[Callable[[Path], str]]:
    """Start `make serve` for a project on 127.0.0.1; returns its base URL once ready. Stopped after the test."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(project: Path) -> str:
        port = free_port()
        process = subprocess.Popen(
            ["make", "serve", f"VENV={workspace.venv}", f"PORT={port}"],
            cwd=project,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        processes.append(process)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "the service exited"
            try:
                with urllib.request.urlopen(base + "/health/ready", timeout=2) as response:
                    if response.status == 200:
                        return base
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, "the service was not ready within 60 s"
            time.sleep(0.2)

    yield start
    for process in processes:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@pytest.mark.parametrize("name", ["binary", "multiclass", "regression"])
def test_numeric_tables_train_gate_register_test_and_serve(
    workspace: Workspace, serve: Callable[[Path], str], name: str
) -> None:
    variant = VARIANTS[name]
    project = prepared(workspace, variant)
    classes = {"binary": [0, 1], "multiclass": [0, 1, 2], "regression": None}[name]
    check_gate_and_registry(
        project, "regression" if name == "regression" else "classification", classes
    )
    spec = spec_of(project)
    assert variant.target not in spec["features"]
    assert variant.id_column not in spec["features"]
    assert all(column == {"type": "number"} for column in spec["columns"].values())
    workspace.make(project, "test")
    status, body = post(serve(project), "/predict", {"records": raw_records(project)})
    assert status == 200, body
    assert len(body["predictions"]) == 5
    for item in body["predictions"]:
        if classes is None:
            assert isinstance(item["prediction"], float)
        else:
            assert item["prediction"] in classes
            assert sorted(item["probabilities"]) == [str(label) for label in classes]


@pytest.fixture(scope="module")
def mixed(workspace: Workspace) -> Path:
    """The project of the mixed numeric and categorical table, its pipeline run."""
    return prepared(workspace, VARIANTS["mixed"])


def test_mixed_table_trains_drifts_and_refuses_bad_files(workspace: Workspace, mixed: Path) -> None:
    variant = VARIANTS["mixed"]
    project = mixed
    package = project.name
    check_gate_and_registry(project, "classification", ["no", "yes"])
    spec = spec_of(project)
    assert spec["features"] == ["usage", "tenure", "plan", "region", "support_calls"]
    assert spec["columns"]["plan"] == {
        "type": "category",
        "categories": ["basic", "plus", "premium"],
    }
    assert spec["columns"]["region"] == {
        "type": "category",
        "categories": ["east", "north", "south", "west"],
        "nullable": True,
    }
    assert spec["columns"]["support_calls"] == {"type": "number", "nullable": True}
    workspace.make(project, "test")

    # The served estimator takes raw records: strings, an unseen category, None for missing values.
    predicted = json.loads(
        workspace.python(project, "-c", PREDICT_SCRIPT.format(package=package)).stdout
    )
    assert len(predicted) == 2
    assert set(predicted) <= {"yes", "no"}

    # A shifted categorical column raises its drift score over the alert threshold.
    script = DRIFT_SCRIPT.format(package=package)
    same = json.loads(workspace.python(project, "-c", script, "same").stdout)
    shifted = json.loads(workspace.python(project, "-c", script, "shifted").stdout)
    threshold = json.loads((project / "models" / "monitoring.json").read_text())["settings"][
        "drift"
    ]["threshold"]
    assert max(same["scores"].values()) < threshold
    assert same["unseen"]["plan"] == 0
    assert shifted["scores"]["plan"] > threshold
    assert shifted["scores"]["usage"] == same["scores"]["usage"]
    rows = 2 * len(raw_records(project, rows=10_000))
    assert shifted["unseen"]["plan"] == (rows + 2) // 3  # every third row is "platinum"

    # Bad data: the exact lines, exit 1, no traceback.
    raw = "data/raw/dataset.csv"
    cases = {
        "missing target": (
            "frame = frame.drop(columns=['churned'])",
            ["column 'churned' is missing"],
        ),
        "wrong type": (
            "frame = frame.astype({'usage': object}); frame.loc[2, 'usage'] = 'lots'",
            ["column 'usage', check coerce_dtype('float64'): 1 failing, e.g. row 3: lots"],
        ),
        "empty table": ("frame = frame.head(0)", ["the table has no rows"]),
    }
    for label, (change, lines) in cases.items():
        workspace.python(project, "-m", f"{package}.ingest")
        breaking = f"import pandas as pd; frame = pd.read_csv('{raw}'); {change}; frame.to_csv('{raw}', index=False)"
        workspace.python(project, "-c", breaking)
        result = workspace.python(project, "-m", "mlopsify_runtime.validate", check=False)
        assert result.returncode == 1, label
        count = f"{len(lines)} failure{'s' if len(lines) > 1 else ''}"
        expected = f"error: {raw} does not match data/schema.yaml ({count}):\n"
        assert result.stderr == expected + "".join(f"  - {line}\n" for line in lines), label

    # Bad imports: one line, exit non-zero, params.yaml untouched.
    params = (project / "params.yaml").read_text(encoding="utf-8")
    empty = workspace.root / "empty.csv"
    empty.write_text("customer_id,usage,churned\n")
    refused = workspace.make(project, "data-import", f"FILE={empty}", check=False)
    assert refused.returncode != 0
    assert f"error: {empty} is empty: the table has no rows\n" in refused.stderr
    table = workspace.root / variant.file
    no_target = workspace.make(project, "data-import", f"FILE={table}", "TARGET=label", check=False)
    assert no_target.returncode != 0
    columns = "customer_id, usage, tenure, plan, region and 2 more"
    line = f"error: params.yaml data.target: 'label' not in the columns of data/external/{variant.file} ({columns})\n"
    assert line in no_target.stderr
    assert "Traceback" not in refused.stderr + no_target.stderr
    assert (project / "params.yaml").read_text(encoding="utf-8") == params


def metric_sample(text: str, name: str, feature: str) -> float:
    prefix = f'{name}{{feature="{feature}"}} '
    values = [float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)]
    assert values, f"no {prefix.strip()} in /metrics"
    return values[0]


def test_mixed_service_answers_raw_records_and_its_drift_gauge_rises(
    workspace: Workspace, mixed: Path, serve: Callable[[Path], str]
) -> None:
    base = serve(mixed)
    records = raw_records(mixed, rows=10_000)
    status, body = post(
        base, "/predict", {"record": {**records[0], "plan": "gold", "region": None}}
    )
    assert status == 200, body
    assert body["prediction"] in {"yes", "no"}
    for start in range(0, len(records), 100):  # training-like traffic fills the drift window
        status, body = post(base, "/predict", {"records": records[start : start + 100] * 2})
        assert status == 200, body
    with urllib.request.urlopen(base + "/metrics", timeout=30) as response:
        before = response.read().decode()
    shifted = [
        {**record, "plan": "platinum" if i % 3 == 0 else "premium"}
        for i, record in enumerate(records * 4)
    ]
    for start in range(0, len(shifted), 100):
        post(base, "/predict", {"records": shifted[start : start + 100]})
    with urllib.request.urlopen(base + "/metrics", timeout=30) as response:
        after = response.read().decode()
    threshold = json.loads((mixed / "models" / "monitoring.json").read_text())["settings"]["drift"][
        "threshold"
    ]
    assert metric_sample(before, "model_feature_drift", "plan") < threshold
    assert metric_sample(after, "model_feature_drift", "plan") > threshold
    assert (
        metric_sample(after, "model_feature_unseen_categories_total", "plan")
        == 1 + (len(shifted) + 2) // 3
    )
