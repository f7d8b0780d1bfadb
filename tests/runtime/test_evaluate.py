"""The quality gate: thresholds, and the champion alias that moves only when every one holds."""

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from mlopsify_runtime import evaluate
from mlopsify_runtime.config import METRICS_FILE, GateParams, load_params


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
    assert failures == ["params.yaml gate.min.recall: no metric 'recall' (use one of ['f1'])"]


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
