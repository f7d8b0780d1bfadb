"""The quality gate: thresholds, and the champion alias that moves only when every one holds."""

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mlopsify_runtime import evaluate
from mlopsify_runtime.baseline import baseline_for, baseline_metrics, live_bounds
from mlopsify_runtime.config import METRICS_FILE, TEST_DATA, TRAIN_DATA, GateParams, load_params


def test_gate_passes_when_every_threshold_holds() -> None:
    gate = GateParams(minimum={"r2": 0.3}, maximum={"rmse": 60.0})
    assert evaluate.gate_failures({"r2": 0.5, "rmse": 50.0}, gate) == []


def test_gate_names_the_metric_and_the_threshold() -> None:
    gate = GateParams(minimum={"roc_auc": 0.95}, maximum={"rmse": 60.0})
    assert evaluate.gate_failures({"roc_auc": 0.9, "rmse": 70.0}, gate) == [
        "roc_auc = 0.9000 is below the minimum 0.95 (params.yaml gate.min.roc_auc)",
        "rmse = 70.0000 is above the maximum 60.0 (params.yaml gate.max.rmse)",
    ]


def test_gate_refuses_an_unknown_metric() -> None:
    failures = evaluate.gate_failures({"f1": 0.9}, GateParams(minimum={"recall": 0.5}, maximum={}))
    assert failures == ["params.yaml gate.min.recall: no metric 'recall' (use one of f1)"]


def test_gate_margins_are_measured_from_the_baseline() -> None:
    gate = GateParams(
        minimum={}, maximum={}, plus={"roc_auc": 0.1, "mae": 50.0}, times={"rmse": 0.8}
    )
    baseline = {"roc_auc": 0.5, "rmse": 3000.0, "mae": 2500.0}
    good = {"roc_auc": 0.6, "rmse": 2400.0, "mae": 2450.0}
    assert evaluate.gate_failures(good, gate, baseline, "the mean") == []
    bad = {"roc_auc": 0.55, "rmse": 2900.0, "mae": 2460.0}
    assert evaluate.gate_failures(bad, gate, baseline, "the mean") == [
        "roc_auc = 0.5500 is below 0.6000, the baseline's 0.5000 + 0.1 (baseline: the mean; params.yaml gate.baseline.plus.roc_auc)",
        "mae = 2460.0000 is above 2450.0000, the baseline's 2500.0000 - 50.0 (baseline: the mean; params.yaml gate.baseline.plus.mae)",
        "rmse = 2900.0000 is above 2400.0000, 0.8 x the baseline's 3000.0000 (baseline: the mean; params.yaml gate.baseline.times.rmse)",
    ]
    assert (
        evaluate.gate_failures(good, gate) == []
    )  # without a baseline: the absolute thresholds alone


def test_live_bounds_are_the_stricter_of_the_absolute_bounds_and_the_baseline_margins() -> None:
    gate = GateParams(
        minimum={"f1": 0.9, "roc_auc": 0.55},
        maximum={"rmse": 2000.0},
        plus={"roc_auc": 0.1, "mae": 50.0, "recall": 0.2},  # no baseline value for recall: no bound
        times={"rmse": 0.8, "r2": 2.0},
    )
    baseline = {"roc_auc": 0.5, "rmse": 3000.0, "mae": 2500.0, "r2": 0.1}
    minimum, maximum = live_bounds(gate, baseline)
    assert minimum == {"f1": 0.9, "roc_auc": 0.6, "r2": 0.2}
    assert maximum == {"rmse": 2000.0, "mae": 2450.0}
    assert live_bounds(gate, {}) == (gate.minimum, gate.maximum)


def test_the_baseline_is_the_prior_class_or_the_mean_of_the_train_split() -> None:
    regression = baseline_metrics(np.array([1.0, 3.0]), np.array([2.0, 4.0]), "regression")
    assert regression["rmse"] == pytest.approx(2**0.5) and regression["mae"] == 1.0
    rare = np.array([0] * 95 + [1] * 5)
    classification = baseline_metrics(rare, rare, "classification")
    assert classification["roc_auc"] == 0.5 and classification["accuracy"] == 0.95
    assert (classification["pr_auc"], classification["recall_1"], classification["min_recall"]) == (
        0.05,
        0.0,
        0.0,
    )


def test_the_gate_and_the_reference_stage_take_the_baseline_of_the_split(project: Path) -> None:
    """baseline_for: the prior class or the mean of data/processed/train.csv's target, scored on
    test.csv's; the frames a step has read already give the same."""
    params = load_params()
    target = {"classification": [0] * 95 + [1] * 5, "regression": [float(n) for n in range(100)]}
    train_target = np.array(target[params.task_type])
    test_target = train_target[::-1][:40]
    frames = {TRAIN_DATA: train_target, TEST_DATA: test_target}
    for path, values in frames.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join([params.data.target, *map(str, values)]) + "\n")
    expected = baseline_metrics(train_target, test_target, params.task_type)
    assert baseline_for(params) == expected
    read = {path: pd.read_csv(path) for path in frames}
    assert baseline_for(params, train=read[TRAIN_DATA], test=read[TEST_DATA]) == expected
    # the test split is the one scored: another test split, another baseline
    assert baseline_for(params, test=read[TRAIN_DATA]) != expected


def test_a_margin_on_an_unknown_metric_says_which_exist() -> None:
    gate = GateParams(minimum={}, maximum={}, plus={"pr_auc": 0.2})
    assert evaluate.gate_failures(
        {"accuracy": 0.9, "f1": 0.8}, gate, {"accuracy": 0.5, "f1": 0.1}
    ) == ["params.yaml gate.baseline.plus.pr_auc: no metric 'pr_auc' (use one of accuracy, f1)"]


def raise_gate_above_reach(params_file: Path) -> str:
    raw = yaml.safe_load(params_file.read_text())
    metric = next(iter(raw["gate"]["min"]))
    raw["gate"]["min"][metric] = 1.01
    params_file.write_text(yaml.safe_dump(raw))
    return metric


def test_alias_moves_only_when_the_gate_passes(
    project: Path, train: Callable[[], None], capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow import MlflowClient

    params = load_params()
    train()
    evaluate.main()
    client = MlflowClient()
    name, alias = params.mlflow.model_name, params.mlflow.alias
    assert str(client.get_model_version_by_alias(name, alias).version) == "1"
    assert set(json.loads((project / METRICS_FILE).read_text())) >= set(params.gate.minimum)

    metric = raise_gate_above_reach(project / "params.yaml")
    train()
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert f"quality gate failed for {name} version 2" in err
    assert f"is below the minimum 1.01 (params.yaml gate.min.{metric})" in err
    assert f"alias '{alias}' stays on version 1" in err
    assert str(client.get_model_version_by_alias(name, alias).version) == "1"
    assert client.get_model_version(name, "2").tags["quality_gate"] == "failed"
