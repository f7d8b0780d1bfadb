"""Model metrics: the one implementation that train, evaluate and the service's live quality share.

Classification with two classes: accuracy, f1 of the positive class (the last of the sorted
classes) and ROC AUC of its probability. With more classes: accuracy, f1 averaged over the
classes (macro) and ROC AUC one-vs-rest, macro-averaged. The gate thresholds keep their meaning
for both. With a minority class under `IMBALANCED` of the rows, also PR AUC (average precision
of the positive class; macro one-vs-rest with more classes), the recall of each class
(`recall_<class>`) and the lowest of them (`min_recall`): accuracy and ROC AUC barely move when
the few rows are missed. Regression: r2, rmse, mae. The gate also judges the metrics of the project's
``gate_metrics`` hook (hooks.py), which `gate_metrics` adds. No pandas here, and scikit-learn's metrics are imported
when first computed: the service imports this module, and answers liveness before it loads any
machine-learning library.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np


class Model(Protocol):
    """A fitted scikit-learn estimator; a classifier also has `predict_proba` and `classes_`."""

    def predict(self, x: object) -> np.ndarray: ...


CLASSIFICATION_METRICS = ("accuracy", "f1", "roc_auc", "pr_auc", "min_recall")
IMBALANCED = 0.1  # a class with a smaller share of the rows makes the data imbalanced
REGRESSION_METRICS = ("r2", "rmse", "mae")


Values = Sequence[Any] | np.ndarray  # labels or numbers, one per row


def classification_metrics(
    actual: Values, predicted: Values, classes: Sequence[Any], probabilities: np.ndarray | None
) -> dict[str, float]:
    """`probabilities`: one column per class of `classes`, in that order (None: no roc_auc)."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    labels = list(classes)
    result = {"accuracy": float(accuracy_score(actual, predicted))}
    if len(labels) == 2:
        result["f1"] = float(f1_score(actual, predicted, pos_label=labels[-1], average="binary", zero_division=0))
    else:
        result["f1"] = float(f1_score(actual, predicted, labels=labels, average="macro", zero_division=0))
    present = set(np.asarray(actual).tolist())
    if probabilities is not None and present == set(labels):  # AUC needs every class in the truth
        if len(labels) == 2:
            positive = [value == labels[-1] for value in actual]
            result["roc_auc"] = float(roc_auc_score(positive, probabilities[:, 1]))
        else:
            result["roc_auc"] = float(
                roc_auc_score(actual, probabilities, multi_class="ovr", average="macro", labels=labels)
            )
    if minority_share(actual) < IMBALANCED:
        result.update(imbalance_metrics(actual, predicted, labels, probabilities if present == set(labels) else None))
    return result


def minority_share(actual: Values) -> float:
    """The share of the rows in the rarest class of `actual`."""
    _, counts = np.unique(np.asarray(actual).astype(str), return_counts=True)
    return float(counts.min() / counts.sum()) if len(counts) else 1.0


def imbalance_metrics(
    actual: Values, predicted: Values, labels: list[Any], probabilities: np.ndarray | None
) -> dict[str, float]:
    """PR AUC (with probabilities and every class in the truth), each class's recall, the lowest."""
    from sklearn.metrics import average_precision_score, recall_score

    recalls = recall_score(actual, predicted, labels=labels, average=None, zero_division=0)
    result = {f"recall_{label}": float(value) for label, value in zip(labels, recalls, strict=True)}
    result["min_recall"] = float(min(recalls))
    if probabilities is not None:
        truth = np.asarray(actual)
        if len(labels) == 2:
            result["pr_auc"] = float(average_precision_score(truth == labels[-1], probabilities[:, 1]))
        else:
            onehot = np.column_stack([truth == label for label in labels])
            result["pr_auc"] = float(average_precision_score(onehot, probabilities, average="macro"))
    return result


def regression_metrics(actual: Values, predicted: Values) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        "r2": float(r2_score(actual, predicted)),
        "rmse": math.sqrt(float(mean_squared_error(actual, predicted))),
        "mae": float(mean_absolute_error(actual, predicted)),
    }


def predictions(model: Model, matrix: object, task_type: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The model's predictions and, for a classifier that has them, its class probabilities."""
    predict_proba = getattr(model, "predict_proba", None) if task_type == "classification" else None
    return model.predict(matrix), (predict_proba(matrix) if predict_proba is not None else None)


def builtin_metrics(
    model: Model, actual: Values, predicted: np.ndarray, probabilities: np.ndarray | None, task_type: str
) -> dict[str, float]:
    if task_type == "classification":
        classes = getattr(model, "classes_").tolist()  # noqa: B009 (not in the Protocol: regressors lack it)
        return classification_metrics(actual, predicted, classes, probabilities)
    return regression_metrics(actual, predicted)


def compute_metrics(model: Model, matrix: object, actual: Values, task_type: str) -> dict[str, float]:
    """The metrics of a fitted model on `matrix` (rows in feature order: an array or a frame) against `actual`."""
    predicted, probabilities = predictions(model, matrix, task_type)
    return builtin_metrics(model, actual, predicted, probabilities, task_type)


def gate_metrics(model: Model, matrix: object, actual: Values, task_type: str) -> dict[str, float]:
    """What the quality gate judges: the built-in metrics and those of the project's ``gate_metrics`` hook."""
    predicted, probabilities = predictions(model, matrix, task_type)
    metrics = builtin_metrics(model, actual, predicted, probabilities, task_type)
    return {**metrics, **hook_metrics(np.asarray(actual), predicted, probabilities, task_type)}


def hook_metrics(
    actual: np.ndarray, predicted: np.ndarray, probabilities: np.ndarray | None, task_type: str
) -> dict[str, float]:
    """The project's own gate metrics (hooks.py), checked: names of their own, finite numbers."""
    from .hooks import HookError, call_hook, hook_label

    found = call_hook("gate_metrics", actual, predicted, probabilities, task_type)
    if found is None:
        return {}
    label = hook_label("gate_metrics")
    if not isinstance(found, Mapping):
        raise HookError(f"the project's hook {label} returned {type(found).__name__}: return a dict of name to number")
    builtin = set(CLASSIFICATION_METRICS) | set(REGRESSION_METRICS)
    checked = {}
    for name, value in found.items():
        if not isinstance(name, str) or not name:
            raise HookError(f"the project's hook {label} returned the metric name {name!r}: names are strings")
        if name in builtin:
            raise HookError(f"the project's hook {label} returned '{name}', a built-in metric: give it another name")
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number) or isinstance(value, bool):
            raise HookError(
                f"the project's hook {label} returned {name} = {value!r}: each value must be a finite number"
            )
        checked[name] = number
    return checked
