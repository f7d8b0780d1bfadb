"""Model tests beyond one number: metrics per slice of the test data, and robustness to noise.

Slices: the test rows grouped by one column (params.yaml ``slices.column``, the groups of the
data card's known-bias section); a column with more than ``MAX_GROUPS`` distinct numbers is cut
into quartiles. Each slice's metrics must reach ``slices.min``, or the gate fails naming the
slice. Robustness: the metrics again after Gaussian noise of ``robustness.noise`` standard
deviations is added to every numeric feature (a fixed seed): reported, never a failure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .config import PipelineError
from .metrics import Model, compute_metrics
from .spec import Spec, model_input, number_indices

if TYPE_CHECKING:
    import pandas as pd

MAX_GROUPS = 10  # a numeric column with more distinct values is cut into quartiles
NOISE_SEED = 0


def groups(test: pd.DataFrame, column: str) -> pd.Series:
    """The slice label of each test row."""
    import pandas as pd

    if column not in test.columns:
        raise PipelineError(
            f"params.yaml slices.column '{column}' is not a column of the data (use one of {list(test.columns)})"
        )
    values = test[column]
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > MAX_GROUPS:
        quartiles = pd.qcut(values, 4, duplicates="drop")
        return quartiles.map(lambda edges: f"({edges.left:.4g}, {edges.right:.4g}]").astype(str).rename(column)
    return values.astype(str).fillna("missing")


def slice_metrics(
    model: Model, test: pd.DataFrame, spec: Spec, target: str, task_type: str, column: str
) -> dict[str, dict[str, float]]:
    """``{"<column>=<group>": metrics}``, with each slice's row count as ``rows``."""
    labels = groups(test, column)
    result = {}
    for label in sorted(labels.unique()):
        rows = test[labels == label]
        metrics = compute_metrics(model, model_input(rows, spec), rows[target].to_numpy(), task_type)
        result[f"{column}={label}"] = {**metrics, "rows": float(len(rows))}
    return result


def slice_failures(slices: dict[str, dict[str, float]], minimum: dict[str, float]) -> list[str]:
    """One message per slice and metric below the slice minimum (a metric a slice lacks, such as
    ROC AUC of a slice with one class, is not judged)."""
    return [
        f"slice {name}: {metric} = {metrics[metric]:.4f} is below the slice minimum {bound} "
        f"(params.yaml slices.min.{metric}, {int(metrics['rows'])} rows)"
        for name, metrics in slices.items()
        for metric, bound in minimum.items()
        if metric in metrics and metrics[metric] < bound
    ]


def noisy_metrics(
    model: Model, test: pd.DataFrame, spec: Spec, target: str, task_type: str, noise: float
) -> dict[str, float]:
    """The metrics after ``noise`` standard deviations of Gaussian noise on each numeric feature."""
    frame = model_input(test, spec).copy()
    generator = np.random.default_rng(NOISE_SEED)
    for index in number_indices(spec):
        column = frame.columns[index]
        values = frame[column].astype(float)
        frame[column] = values + generator.normal(0.0, noise * float(values.std() or 0.0), len(values))
    return compute_metrics(model, frame, test[target].to_numpy(), task_type)
