"""Train: fit a scikit-learn Pipeline, log it to MLflow, register it, and save it for serving.

Outputs: models/model/ (an MLflow model directory, what a serving image bakes in),
models/features.json (the ordered feature columns) and models/registration.json (the
registered version that evaluate judges). MLflow is imported only where it is used: it is slow.
"""

from __future__ import annotations

import json
import shutil
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from .config import (
    FEATURES_FILE,
    MODEL_DIR,
    REGISTRATION_FILE,
    TARGET,
    TRAIN_DATA,
    TRAIN_METRICS_FILE,
    Params,
    load_params,
    tracking_uri,
)
from .metrics import compute_metrics

# What the saved model needs at serving time; listing it skips MLflow's slow inference.
RUNTIME_PACKAGES = ("mlflow", "scikit-learn", "skops", "numpy", "pandas", "scipy")


def feature_columns(frame: pd.DataFrame) -> list[str]:
    return [column for column in frame.columns if column != TARGET]


def build_pipeline(task_type: str, model_params: dict[str, Any]) -> Pipeline:
    """Scaling then a linear model: LogisticRegression (classification) or Ridge (regression)."""
    estimator = LogisticRegression(**model_params) if task_type == "classification" else Ridge(**model_params)
    return Pipeline([("scale", StandardScaler()), ("model", estimator)])


def fit(train: pd.DataFrame, task_type: str, model_params: dict[str, Any]) -> tuple[Pipeline, list[str]]:
    features = feature_columns(train)
    pipeline = build_pipeline(task_type, model_params)
    pipeline.fit(train[features], train[TARGET])
    return pipeline, features


def pip_requirements() -> list[str]:
    return [f"{name}=={version(name)}" for name in RUNTIME_PACKAGES]


def write_json(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def save_model(pipeline: Pipeline, example: pd.DataFrame, model_dir: Path) -> None:
    """Save ``pipeline`` as an MLflow model directory, replacing an older one."""
    import mlflow
    from mlflow.models import infer_signature

    shutil.rmtree(model_dir, ignore_errors=True)
    mlflow.sklearn.save_model(
        pipeline,
        str(model_dir),
        signature=infer_signature(example, pipeline.predict(example)),
        input_example=example,
        pip_requirements=pip_requirements(),
    )


def log_and_register(
    pipeline: Pipeline, params: Params, metrics: dict[str, float], example: pd.DataFrame
) -> dict[str, Any]:
    """Log params, training metrics and the model to MLflow; register a new model version."""
    import mlflow
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_experiment(params.mlflow.experiment)
    with mlflow.start_run() as run:
        mlflow.log_params({"task_type": params.task_type, **params.model, **vars(params.data)})
        mlflow.log_metrics({f"train_{name}": value for name, value in metrics.items()})
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            registered_model_name=params.mlflow.model_name,
            signature=infer_signature(example, pipeline.predict(example)),
            input_example=example,
            pip_requirements=pip_requirements(),
        )
    return {
        "model_name": params.mlflow.model_name,
        "version": str(info.registered_model_version),
        "run_id": run.info.run_id,
    }


def main() -> None:
    params = load_params()
    train = pd.read_csv(TRAIN_DATA)
    pipeline, features = fit(train, params.task_type, params.model)
    metrics = compute_metrics(pipeline, train, features, params.task_type)
    example = train[features].head(3)
    save_model(pipeline, example, MODEL_DIR)
    write_json({"features": features, "target": TARGET, "task_type": params.task_type}, FEATURES_FILE)
    registration = log_and_register(pipeline, params, metrics, example)
    write_json(registration, REGISTRATION_FILE)
    write_json(metrics, TRAIN_METRICS_FILE)
    print(f"train: registered {registration['model_name']} version {registration['version']}")


if __name__ == "__main__":
    main()
