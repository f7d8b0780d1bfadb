"""Tiny models saved the way the runtime's training step saves them, and helpers to serve them.

`save_model` writes what `mlopsify_runtime.training.run_training` leaves in models/: the model
directory in MLflow's scikit-learn layout with the pickle serialization (`mlflow.sklearn.save_model`,
offline: no tracking server, no registry), features.json from `spec.describe` via `spec.write_spec`,
and registration.json. The service's loader reads exactly these three.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlopsify_runtime.compiled import ONNX_FILE, ServingDecision, convert
from mlopsify_runtime.serving import Settings
from mlopsify_runtime.serving.spec import FeatureSpec
from mlopsify_runtime.spec import describe, model_input, write_spec
from mlopsify_runtime.training import SERIALIZATION_FORMAT, write_json

with warnings.catch_warnings():  # starlette's test client warns about its own httpx use
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

NUMBERS = ["feature_a", "feature_b", "feature_c"]
FEATURES = [*NUMBERS, "colour"]
COLOURS = ["blue", "green", "red"]
TASK_TYPES = ("classification", "regression")
MODEL_NAME = "credit-risk"  # what registration.json names: the service takes its name from there
TOKEN = "token-for-tests"
RECORD: dict[str, Any] = {"feature_a": 1.0, "feature_b": -0.5, "feature_c": 2, "colour": "red"}


def training_frame(rows: int = 60, seed: int = 0) -> pd.DataFrame:
    """Three number features, one category and both targets."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(NUMBERS))), columns=NUMBERS)
    frame["colour"] = rng.choice(COLOURS, size=rows)
    frame["label"] = (frame["feature_a"] + frame["feature_b"] > 0).astype(int)
    frame["value"] = 150 + 40 * frame["feature_a"] - 10 * frame["feature_c"]
    return frame


def tiny_pipeline(task_type: str) -> Pipeline:
    """Numbers scaled, the category one-hot encoded (unknown categories ignored), by position."""
    columns = ColumnTransformer(
        [
            ("numbers", StandardScaler(), [0, 1, 2]),
            ("colour", OneHotEncoder(handle_unknown="ignore"), [3]),
        ]
    )
    estimator = LogisticRegression() if task_type == "classification" else LinearRegression()
    return make_pipeline(columns, estimator)


def save_model(
    root: Path,
    task_type: str,
    pipeline: Pipeline | None = None,
    features: list[str] = FEATURES,
    frame: pd.DataFrame | None = None,
    id_column: str | None = None,
    compiled: bool = False,
) -> Settings:
    """Fit (unless given a fitted `pipeline`) and save a model as training does; its Settings.

    `frame`: training data of the test's own (with `label` and `value`) for the given `pipeline`.
    With `compiled`, also its ONNX conversion (model.onnx) and the gate's decision to serve it
    with onnxruntime (models/serving.json), as training and the gate write them.
    """
    import mlflow.sklearn  # slow to import: only where a model is saved

    frame = training_frame() if frame is None else frame
    target = "label" if task_type == "classification" else "value"
    spec = describe(frame, features, target, task_type, id_column)
    if pipeline is None:
        pipeline = tiny_pipeline(task_type).fit(model_input(frame, spec), frame[target].to_numpy())
    model_dir = root / "models" / "model"
    # Naming the requirements skips MLflow's slow inference of them.
    mlflow.sklearn.save_model(
        pipeline,
        model_dir,
        pip_requirements=["scikit-learn"],
        serialization_format=SERIALIZATION_FORMAT,
    )
    features_path, registration_path = (
        root / "models" / "features.json",
        root / "models" / "registration.json",
    )
    write_spec(spec, features_path)
    write_json({"model_name": MODEL_NAME, "version": "7", "run_id": "run123"}, registration_path)
    serving_path = root / "models" / "serving.json"
    if compiled:
        (model_dir / ONNX_FILE).write_bytes(convert(pipeline, FeatureSpec.from_dict(spec)))
        ServingDecision("7", "onnx", "saved by the tests").write(serving_path)
    return Settings(
        model_dir=model_dir,
        features_path=features_path,
        registration_path=registration_path,
        serving_path=serving_path,
        signing_public_key=root / "keys" / "model-signing.pub",  # absent: no signature check
        git_commit="abc1234",
    )


def wait_ready(client: TestClient) -> None:
    deadline = time.monotonic() + 30
    while client.get("/health/ready").status_code != 200:
        assert time.monotonic() < deadline, "the model did not load within 30 s"
        time.sleep(0.02)


def post(
    client: TestClient, body: object, path: str = "/predict", **headers: str
) -> httpx.Response:
    """POST `body` (bytes as they are, anything else as JSON) with Content-Type: application/json."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response: httpx.Response = client.post(
        path, content=content, headers={"content-type": "application/json", **headers}
    )
    return response


def without_request_id(response: httpx.Response) -> dict[str, Any]:
    """The JSON body without its random request id, which must be 32 hex characters."""
    body: dict[str, Any] = response.json()
    request_id = body.pop("request_id")
    assert len(request_id) == 32 and int(request_id, 16) >= 0, request_id
    return body
