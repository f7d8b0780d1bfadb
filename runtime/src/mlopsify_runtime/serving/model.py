"""Load the trained model once and predict on numpy arrays in feature order.

A version that the gate marked for compiled serving (models/serving.json, compiled.py) is run
by onnxruntime from the model directory's model.onnx: nothing is unpickled, and scikit-learn is
never imported (the compiled image does not have it). Otherwise, or with MODEL_RUNTIME=sklearn,
the scikit-learn model is loaded. Both take the same matrix and answer in one call per request.

The MLflow model directory is read without importing MLflow: its `MLmodel` file names the
scikit-learn artifact and its serialization format, and the estimator is loaded with pickle (what
train writes), or with skops for a model saved in that format, directly. Importing this module
imports no machine-learning library: scikit-learn comes with the model, so the service answers
liveness while the model loads, and skops only for a skops model (importing it took 0.5 to 6 s).
Predicting on a numpy array instead of a pandas DataFrame is several times cheaper per record.
Loading from the registry (`models:/name@alias`) needs MLflow and is meant for a development
environment; the image bakes the model directory instead.
"""

from __future__ import annotations

import json
import pickle
import warnings
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import yaml

from ..compiled import ONNX_FILE, OnnxScorer, Runtime, ServingDecision
from .schemas import finite_or_refuse
from .settings import Settings
from .spec import Column, FeatureSpec, SpecError

# The estimator was fitted on a DataFrame; rows arrive in the same column order (checked at load).
warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)


class Estimator(Protocol):
    """A fitted scikit-learn estimator (a Pipeline in this project)."""

    def predict(self, x: np.ndarray) -> np.ndarray: ...


class ModelLoadError(RuntimeError):
    """The model directory or its feature list is missing or inconsistent."""


@dataclass(frozen=True)
class ModelInfo:
    """What /version and the `model_info` metric report."""

    name: str
    version: str
    run_id: str
    git_commit: str
    trained_at: float


class Prediction(NamedTuple):
    """One prediction: a class label (with class probabilities) or a regression value."""

    value: int | float | str
    probabilities: dict[str, float] | None = None


@dataclass(frozen=True)
class Scored:
    """The model's answer for a batch, as arrays: what the service answers, counts and monitors."""

    values: list[Any]  # per row: the predicted class (its label, as the model has it) or value
    probabilities: np.ndarray | None = None  # rows x classes, in the order of `LoadedModel.classes`
    best: np.ndarray | None = None  # per row: the index of the predicted class

    def __len__(self) -> int:
        return len(self.values)


class Scorer(Protocol):
    """What LoadedModel predicts with: a scikit-learn estimator, or an ONNX model (compiled.OnnxScorer)."""

    runtime: Runtime
    proba: bool  # scores are class probabilities (rows x classes), else one prediction per row

    def scores(self, matrix: np.ndarray) -> np.ndarray: ...


class SklearnScorer:
    """A fitted scikit-learn estimator: probabilities for a classifier with predict_proba, else predict."""

    runtime: Runtime = "sklearn"

    def __init__(self, estimator: Estimator, task_type: str) -> None:
        self.estimator: Any = estimator  # predict_proba exists on classifiers only
        self.proba = task_type == "classification" and hasattr(estimator, "predict_proba")
        from sklearn import config_context  # already imported by unpickling the estimator

        self._config_context = config_context

    def scores(self, matrix: np.ndarray) -> np.ndarray:
        # The parser let only finite, bounded values in: scikit-learn's own finiteness checks are
        # skipped (faster), so an overflow inside the model reaches the output and becomes a 422.
        with self._config_context(assume_finite=True), np.errstate(over="ignore", invalid="ignore"):
            if self.proba:
                return np.asarray(self.estimator.predict_proba(matrix))
            return np.asarray(self.estimator.predict(matrix))


class LoadedModel:
    """The served model (a scikit-learn estimator or a Scorer) with its feature spec, task type and provenance."""

    def __init__(self, model: Estimator | OnnxScorer, spec: FeatureSpec, info: ModelInfo) -> None:
        self.scorer: Scorer = model if isinstance(model, OnnxScorer) else SklearnScorer(model, spec.task_type)
        self.estimator: Any = getattr(self.scorer, "estimator", None)  # None when served compiled
        classes = getattr(self.estimator, "classes_", None)
        self.classes: list[Any] = classes.tolist() if classes is not None else list(spec.classes)
        # The estimator's classes complete a spec that does not list them (the OpenAPI document uses them).
        self.spec = replace(spec, classes=tuple(self.classes)) if self.classes and not spec.classes else spec
        self.features = spec.names
        self.task_type = spec.task_type
        self.info = info
        self.runtime = self.scorer.runtime
        self.keys = [str(label) for label in self.classes]  # the classes as text: the probabilities' keys
        self._labels = np.array(self.classes, dtype=object)  # a class by its index, for a whole batch at once

    def score(self, matrix: np.ndarray) -> Scored:
        """The model's answer for the rows of `matrix` (records x features, feature order), one model call.

        Raises `InputError` (422) when the model's output is not finite for these rows.
        """
        scores = self.scorer.scores(matrix)
        finite_or_refuse(scores)
        if self.scorer.proba:
            best = scores.argmax(axis=1)
            return Scored(self._labels[best].tolist(), scores, best)
        return Scored(scores.tolist())

    def predict(self, matrix: np.ndarray) -> list[Prediction]:
        """One `Prediction` per row of `matrix` (what batch scoring takes; the service answers from `score`)."""
        scored = self.score(matrix)
        if scored.probabilities is None:
            return [Prediction(value) for value in scored.values]
        keys = self.keys
        return [
            Prediction(value, dict(zip(keys, row, strict=True)))
            for value, row in zip(scored.values, scored.probabilities.tolist(), strict=True)
        ]


def _trained_at(mlmodel: dict[str, Any], model_dir: Path) -> float:
    created = mlmodel.get("utc_time_created")
    if created:
        return datetime.fromisoformat(f"{created}+00:00").timestamp()  # MLflow writes UTC
    return (model_dir / "MLmodel").stat().st_mtime


def _load_estimator(model_dir: Path, mlmodel: dict[str, Any]) -> Estimator:
    flavor = mlmodel.get("flavors", {}).get("sklearn")
    if not flavor:
        raise ModelLoadError(f"{model_dir}/MLmodel has no sklearn flavor")
    artifact = model_dir / flavor["pickled_model"]
    if flavor.get("serialization_format") == "skops":
        import skops.io

        estimator: Estimator = skops.io.load(artifact, trusted=flavor.get("skops_trusted_types"))
        return estimator
    with artifact.open("rb") as handle:
        # A pickle is only loaded from the model directory this project's pipeline wrote.
        loaded: Estimator = pickle.load(handle)
        return loaded


def _feature_spec(features_path: Path, estimator: Estimator) -> FeatureSpec:
    names_in = getattr(estimator, "feature_names_in_", None)
    if features_path.is_file():
        try:
            spec = FeatureSpec.from_file(features_path)
        except SpecError as error:
            raise ModelLoadError(str(error)) from None
    elif names_in is not None:
        task_type = "classification" if hasattr(estimator, "classes_") else "regression"
        spec = FeatureSpec(tuple(Column(str(name)) for name in names_in), task_type)
    else:
        raise ModelLoadError(f"{features_path} is missing and the model does not name its features")
    if names_in is not None and [str(name) for name in names_in] != spec.names:
        raise ModelLoadError(f"{features_path} lists features in another order than the model was fitted on")
    return spec


def _registration(path: Path) -> dict[str, str]:
    """models/registration.json from train: the registered name, version and training run."""
    if not path.is_file():
        return {}
    return {key: str(value) for key, value in json.loads(path.read_text()).items()}


def _runtime(settings: Settings, registered: dict[str, str], model_dir: Path) -> Runtime:
    """onnx when MODEL_RUNTIME says so, or (unset) when the gate marked this version; else sklearn."""
    if settings.model_runtime:
        chosen: Runtime = settings.model_runtime
    elif "runtime" in registered:  # from the registry: the gate's tag on the version
        chosen = "onnx" if registered["runtime"] == "onnx" else "sklearn"
    else:
        try:
            decision = ServingDecision.read(settings.serving_path)
        except ValueError as error:
            raise ModelLoadError(str(error)) from None
        chosen = decision.runtime if decision else "sklearn"
        version = registered.get("version")
        if decision and version and decision.model_version != version:
            raise ModelLoadError(
                f"{settings.serving_path} decides for version {decision.model_version}, the model is version "
                f"{version}: run the gate (make gate) for this model"
            )
    if chosen == "onnx" and not (model_dir / ONNX_FILE).is_file():
        raise ModelLoadError(
            f"{model_dir / ONNX_FILE} not found: train again to convert the model, or set MODEL_RUNTIME=sklearn"
        )
    return chosen


def _compiled(model_dir: Path, settings: Settings) -> tuple[OnnxScorer, FeatureSpec]:
    if not settings.features_path.is_file():
        raise ModelLoadError(f"{settings.features_path} not found: the compiled model needs its feature spec")
    try:
        spec = FeatureSpec.from_file(settings.features_path)
        scorer = OnnxScorer(model_dir / ONNX_FILE, spec)
    except (SpecError, ValueError) as error:
        raise ModelLoadError(str(error)) from None
    if spec.task_type == "classification" and not spec.classes:  # the probabilities' columns
        raise ModelLoadError(f"{settings.features_path} lists no classes: train again, or set MODEL_RUNTIME=sklearn")
    return scorer, spec


def _sklearn(model_dir: Path, mlmodel: dict[str, Any], settings: Settings) -> tuple[Estimator, FeatureSpec]:
    try:
        estimator = _load_estimator(model_dir, mlmodel)
    except ModuleNotFoundError as error:  # the compiled image carries onnxruntime, not scikit-learn
        raise ModelLoadError(
            f"{error.name} is not installed: this environment serves compiled models only; "
            "build the scikit-learn image (make image SERVING=sklearn) or serve the ONNX model"
        ) from None
    return estimator, _feature_spec(settings.features_path, estimator)


def load_model_dir(model_dir: Path, settings: Settings, registration: dict[str, str] | None = None) -> LoadedModel:
    """Load an MLflow model directory without importing MLflow: its ONNX model or its scikit-learn one."""
    mlmodel_path = model_dir / "MLmodel"
    if not mlmodel_path.is_file():
        raise ModelLoadError(f"{mlmodel_path} not found: run the pipeline (make pipeline) first")
    mlmodel = yaml.safe_load(mlmodel_path.read_text())
    registered = registration if registration is not None else _registration(settings.registration_path)
    model: OnnxScorer | Estimator
    if _runtime(settings, registered, model_dir) == "onnx":
        model, spec = _compiled(model_dir, settings)
    else:
        model, spec = _sklearn(model_dir, mlmodel, settings)
    info = ModelInfo(
        name=registered.get("model_name") or settings.model_name,
        version=settings.model_version or registered.get("version") or "unregistered",
        run_id=registered.get("run_id") or str(mlmodel.get("run_id") or "unknown"),
        git_commit=settings.git_commit,
        trained_at=_trained_at(mlmodel, model_dir),
    )
    return LoadedModel(model, spec, info)


def load_from_registry(settings: Settings) -> LoadedModel:
    """Download `settings.model_uri` (models:/name@alias or models:/name/version) with MLflow, then load it."""
    import mlflow  # only in the development environment, never in the serving image

    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=settings.model_uri))
    registration: dict[str, str] = {}
    reference = settings.model_uri.removeprefix("models:/")
    if settings.model_uri.startswith("models:/"):
        client = mlflow.MlflowClient()
        if "@" in reference:
            name, alias = reference.split("@", 1)
            found = client.get_model_version_by_alias(name, alias)
        else:
            name, number = reference.split("/", 1)
            found = client.get_model_version(name, number)
        registration = {
            "model_name": found.name,
            "version": str(found.version),
            "run_id": found.run_id or "",
            "runtime": (found.tags or {}).get("serving.runtime", "sklearn"),
        }
    return load_model_dir(local, settings, registration)


def load_model(settings: Settings) -> LoadedModel:
    """The model at `settings.model_uri` (registry) when set, else in `settings.model_dir`."""
    if settings.model_uri:
        return load_from_registry(settings)
    return load_model_dir(settings.model_dir, settings)
