"""Training machinery: fit the project's model, log it to MLflow, register, save and sign it.

A project's ``train.py`` defines the model (``build_pipeline``) and calls :func:`run_training`
with it; everything else a training step does is here, the same for every project.

Outputs: models/model/ (the registered model version's own files, downloaded from MLflow: what
a serving image bakes in; with model.onnx, the same pipeline converted for compiled serving
(compiled.py), when skl2onnx can convert it), models/features.json (the feature spec, spec.py) and
models/registration.json (the registered version that evaluate judges). MLflow is imported only
where it is used: it is slow. The model directory is signed (signing.py).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from .compiled import ONNX_FILE, ConversionError, convert
from .config import (
    FEATURES_FILE,
    MODEL_DIR,
    REGISTRATION_FILE,
    TRAIN_DATA,
    TRAIN_METRICS_FILE,
    DataParams,
    Params,
    experiment_name,
    load_params,
    tracking_uri,
)
from .metrics import compute_metrics
from .serving.spec import FeatureSpec
from .signing import publish_signature, sign_if_configured
from .spec import Spec, describe, model_input, read_frame, text_indices, to_matrix, write_spec

# What the saved model needs at serving time; listing it skips MLflow's slow inference.
RUNTIME_PACKAGES = ("mlflow-skinny", "scikit-learn", "numpy", "pandas", "scipy")
# Plain pickle, which the service loads with the standard library: loading skops imports every
# scikit-learn estimator first, which took longer than the rest of the service's start. A model
# is only ever loaded from this project's own registry or models/ (docs/runtime/serving.md).
SERIALIZATION_FORMAT = "pickle"
# The Pipeline selects columns by position: an array without the names (the service's, MLflow's
# example of mixed features) is as good as a frame.
warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)

BuildPipeline = Callable[[str, dict[str, Any], Spec], Pipeline]
"""The project's model: ``build_pipeline(task_type, model_params, spec)`` (its train.py)."""


def feature_columns(frame: pd.DataFrame, data: DataParams) -> list[str]:
    return [str(column) for column in frame.columns if column not in {data.target, data.id_column}]


def fit(
    build: BuildPipeline, train: pd.DataFrame, data: DataParams, task_type: str, model_params: dict[str, Any]
) -> tuple[Pipeline, Spec]:
    """The fitted Pipeline and its feature spec (what models/features.json holds)."""
    spec = describe(train, feature_columns(train, data), data.target, task_type, data.id_column)
    pipeline = build(task_type, model_params, spec)
    pipeline.fit(model_input(train, spec), train[data.target].to_numpy())
    return pipeline, spec


def input_example(train: pd.DataFrame, spec: Spec) -> pd.DataFrame | np.ndarray:
    """Three training rows for MLflow's signature: a frame when every feature is a number (what
    `mlflow models serve` clients send as dataframe_split), else the object matrix of spec.py."""
    rows = train.head(3)
    return to_matrix(rows, spec) if text_indices(spec) else rows[spec["features"]]


def pip_requirements() -> list[str]:
    return [f"{name}=={version(name)}" for name in RUNTIME_PACKAGES]


def write_json(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def save_registered_model(registration: dict[str, Any], model_dir: Path) -> None:
    """Download the registered version's files to ``model_dir`` (replacing an older model): what
    the service and the image load are the very bytes MLflow registered."""
    import mlflow

    shutil.rmtree(model_dir, ignore_errors=True)
    model_dir.mkdir(parents=True)
    uri = f"models:/{registration['model_name']}/{registration['version']}"
    mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(model_dir))


def log_onnx(pipeline: Pipeline, spec: Spec, model_id: str) -> dict[str, str]:
    """Convert the pipeline to ONNX and add it to the logged model's files (so to the registered
    version's); what registration.json records about it: the reason when it cannot be converted."""
    import mlflow

    try:
        onnx = convert(pipeline, FeatureSpec.from_dict(spec))
    except ConversionError as error:
        print(f"train: the model is not converted to ONNX ({error}): it will be served by scikit-learn")
        return {"onnx_error": str(error)}
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / ONNX_FILE
        path.write_bytes(onnx)
        mlflow.MlflowClient().log_model_artifact(model_id, str(path))
    return {}


def log_and_register(
    pipeline: Pipeline, params: Params, metrics: dict[str, float], example: pd.DataFrame | np.ndarray, spec: Spec
) -> dict[str, Any]:
    """Log params, training metrics and the model (with its ONNX conversion) to MLflow; register a new model version."""
    import mlflow
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_experiment(params.mlflow.experiment)
    with mlflow.start_run() as run:
        data = params.data
        split = {"source": data.source, "target": data.target, "test_size": data.test_size, "seed": data.random_state}
        mlflow.log_params({"task_type": params.task_type, **params.model, **split})
        mlflow.log_metrics({f"train_{name}": value for name, value in metrics.items()})
        if name := experiment_name():  # make tune: the run names its DVC experiment and its parameters
            tags = {f"dvc.param.model.{key}": str(value) for key, value in params.model.items()}
            mlflow.set_tags({"dvc.experiment": name, **tags})
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            registered_model_name=params.mlflow.model_name,
            signature=infer_signature(example, pipeline.predict(example)),
            input_example=example,
            pip_requirements=pip_requirements(),
            serialization_format=SERIALIZATION_FORMAT,
        )
        onnx = log_onnx(pipeline, spec, info.model_id)
    return {
        "model_name": params.mlflow.model_name,
        "version": str(info.registered_model_version),
        "run_id": run.info.run_id,
        **onnx,
    }


def run_training(build: BuildPipeline) -> None:
    """The training step: fit ``build``'s model on the train split, register, save and sign it."""
    params = load_params()
    train = read_frame(TRAIN_DATA)
    pipeline, spec = fit(build, train, params.data, params.task_type, params.model)
    matrix = model_input(train, spec)
    metrics = compute_metrics(pipeline, matrix, train[params.data.target].to_numpy(), params.task_type)
    registration = log_and_register(pipeline, params, metrics, input_example(train, spec), spec)
    save_registered_model(registration, MODEL_DIR)
    if signature := sign_if_configured(MODEL_DIR):  # beside the version too, where promotion checks it
        publish_signature(signature, registration["run_id"])
    write_spec(spec, FEATURES_FILE)
    write_json(registration, REGISTRATION_FILE)
    write_json(metrics, TRAIN_METRICS_FILE)
    print(f"train: registered {registration['model_name']} version {registration['version']}")
