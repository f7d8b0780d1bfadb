"""Model metrics, shared by train (on the training set) and evaluate (on the test set)."""

from __future__ import annotations

import math

import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline

from .config import TARGET


def compute_metrics(model: Pipeline, frame: pd.DataFrame, features: list[str], task_type: str) -> dict[str, float]:
    """Classification: accuracy, f1, roc_auc; regression: r2, rmse, mae."""
    x, y = frame[features], frame[TARGET]
    predicted = model.predict(x)
    if task_type == "classification":
        return {
            "accuracy": float(accuracy_score(y, predicted)),
            "f1": float(f1_score(y, predicted)),
            "roc_auc": float(roc_auc_score(y, model.predict_proba(x)[:, 1])),
        }
    return {
        "r2": float(r2_score(y, predicted)),
        "rmse": math.sqrt(float(mean_squared_error(y, predicted))),
        "mae": float(mean_absolute_error(y, predicted)),
    }
