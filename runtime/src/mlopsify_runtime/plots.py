"""DVC plots of the evaluate stage: pictures of the model on the test set, and of the gate's decision.

Classification: plots/confusion.csv (one row per test row: actual, predicted; DVC draws the
confusion matrix) and plots/roc.csv (the ROC curve of the positive class, the last of the
sorted classes, one-vs-rest with more than two). Regression: plots/residuals.csv (predicted,
residual). Both: plots/gate.csv, each metric of the challenger beside the champion's.
`make plots` (`dvc plots show`) renders them into dvc_plots/index.html.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .challenger import Decision
from .metrics import Model

PLOTS_DIR = Path("plots")


def write_rows(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_model_plots(
    model: Model, matrix: object, actual: np.ndarray, task_type: str, folder: Path = PLOTS_DIR
) -> None:
    predicted = model.predict(matrix)
    if task_type != "classification":
        residuals = np.asarray(actual, dtype=float) - np.asarray(predicted, dtype=float)
        write_rows(
            folder / "residuals.csv",
            ("predicted", "residual"),
            zip(predicted.tolist(), residuals.tolist(), strict=True),
        )
        return
    from sklearn.metrics import roc_curve

    write_rows(
        folder / "confusion.csv",
        ("actual", "predicted"),
        zip(np.asarray(actual).tolist(), predicted.tolist(), strict=True),
    )
    classes = getattr(model, "classes_").tolist()  # noqa: B009 (not in the Protocol: regressors lack it)
    predict_proba = getattr(model, "predict_proba", None)
    if predict_proba is None:
        return
    positive = [value == classes[-1] for value in np.asarray(actual).tolist()]
    fpr, tpr, thresholds = roc_curve(positive, predict_proba(matrix)[:, -1])
    finite = np.where(np.isfinite(thresholds), thresholds, 1.0)  # the first point's threshold is inf
    write_rows(
        folder / "roc.csv", ("fpr", "tpr", "threshold"), zip(fpr.tolist(), tpr.tolist(), finite.tolist(), strict=True)
    )


def write_gate_plot(decision: Decision, folder: Path = PLOTS_DIR) -> None:
    """One row per metric and model, so that DVC draws the challenger beside the champion."""
    rows = [
        (f"{name} challenger v{decision.challenger_version}", value)
        for name, value in decision.challenger_metrics.items()
    ]
    rows += [
        (f"{name} champion v{decision.champion_version}", value) for name, value in decision.champion_metrics.items()
    ]
    write_rows(folder / "gate.csv", ("metric", "value"), sorted(rows))
