"""The naive baseline of the quality gate, and the bounds its metrics set.

The gate fits the naive model of the task (BASELINES) on the same split as the model and
requires the model to beat it by the margins of `params.yaml gate.baseline` (evaluate.py).
Those margins are bounds on the metrics; the reference stage exports them, with the
absolute `gate.min`/`gate.max`, as the thresholds of the live-quality alert (reference.py),
so that production is held to the gate the model passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .challenger import LOWER_IS_BETTER
from .config import TEST_DATA, TRAIN_DATA, GateParams, Params
from .metrics import gate_metrics
from .spec import read_frame

if TYPE_CHECKING:
    import pandas as pd

BASELINES = {
    "classification": "the prior class of the training labels",
    "regression": "the mean of the training target",
}


def baseline_metrics(train_target: np.ndarray, test_target: np.ndarray, task_type: str) -> dict[str, float]:
    """The gate's metrics of the naive model of the task (BASELINES), fitted on the train split's
    target and scored on the test rows: what a model that learnt nothing from the features gets."""
    from sklearn.dummy import DummyClassifier, DummyRegressor

    naive = DummyClassifier(strategy="prior") if task_type == "classification" else DummyRegressor(strategy="mean")
    naive.fit(np.zeros((len(train_target), 1)), train_target)
    return gate_metrics(naive, np.zeros((len(test_target), 1)), test_target, task_type)


def baseline_for(
    params: Params, train: pd.DataFrame | None = None, test: pd.DataFrame | None = None
) -> dict[str, float]:
    """The gate's baseline of the project: `baseline_metrics` on the target of its train and test
    splits (data/processed, or the frames a step has read already). The gate judges the model
    against it (evaluate.py); the reference stage exports the bounds it sets (reference.py)."""
    target = params.data.target
    train_target = (read_frame(TRAIN_DATA) if train is None else train)[target].to_numpy()
    test_target = (read_frame(TEST_DATA) if test is None else test)[target].to_numpy()
    return baseline_metrics(train_target, test_target, params.task_type)


@dataclass(frozen=True)
class BaselineBound:
    """One margin of `gate.baseline` turned into a bound on its metric: the metric must stay
    under `value` when `lower` is better, and reach it otherwise."""

    metric: str
    value: float
    lower: bool
    how: str  # e.g. "the baseline's 0.5000 + 0.1"
    where: str  # e.g. "params.yaml gate.baseline.plus.roc_auc"


def baseline_bounds(gate: GateParams, baseline: dict[str, float]) -> list[BaselineBound]:
    """The bounds that the margins over the baseline set: `plus` adds to the baseline's value
    (subtracts, for a metric where lower is better), `times` multiplies it. A margin on a metric
    the baseline has no value for sets none (the gate reports it)."""
    bounds = []
    for rule, margins in (("plus", gate.plus), ("times", gate.times)):
        for name, margin in margins.items():
            if name not in baseline:
                continue
            lower = name in LOWER_IS_BETTER
            if rule == "times":
                value, how = baseline[name] * margin, f"{margin} x the baseline's {baseline[name]:.4f}"
            else:
                value = baseline[name] - margin if lower else baseline[name] + margin
                how = f"the baseline's {baseline[name]:.4f} {'-' if lower else '+'} {margin}"
            bounds.append(BaselineBound(name, value, lower, how, f"params.yaml gate.baseline.{rule}.{name}"))
    return bounds


def live_bounds(gate: GateParams, baseline: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """The quality a model must keep in production, as the gate judged it before promotion: per
    metric, the stricter of the absolute `gate.min`/`gate.max` and the baseline's margins.
    Returns (minimums, maximums); the alert ModelLiveQualityBelowGate reads them."""
    minimum, maximum = dict(gate.minimum), dict(gate.maximum)
    for bound in baseline_bounds(gate, baseline):
        if bound.lower:
            maximum[bound.metric] = min(maximum.get(bound.metric, bound.value), bound.value)
        else:
            minimum[bound.metric] = max(minimum.get(bound.metric, bound.value), bound.value)
    return minimum, maximum
