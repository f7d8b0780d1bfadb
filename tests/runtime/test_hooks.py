"""Extension points: a project's hooks change the gate's metrics and may refuse a promotion.

The project's hooks module is the ``fake_hooks`` fixture's (conftest.py): no project package,
with its entry point, is installed in mlopsify's environment.
"""

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.linear_model import LogisticRegression, Ridge

from mlopsify_runtime import evaluate, hooks, promotion
from mlopsify_runtime.config import METRICS_FILE, load_params, run_step
from mlopsify_runtime.hooks import HookError, call_hook
from mlopsify_runtime.metrics import gate_metrics

Hooks = Callable[..., ModuleType]
X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0]])
LABELS = np.array([0, 0, 0, 1, 1, 1])


def test_without_hooks_the_runtime_keeps_its_behaviour() -> None:
    hooks.hooks_module.cache_clear()
    assert hooks.hooks_module() is None  # no project declares the entry point here
    assert call_hook("gate_metrics", None, None, None, "classification") is None
    model = LogisticRegression().fit(X, LABELS)
    assert set(gate_metrics(model, X, LABELS, "classification")) == {"accuracy", "f1", "roc_auc"}


def test_the_hook_gets_labels_predictions_and_probabilities(fake_hooks: Hooks) -> None:
    seen: dict[str, Any] = {}

    def positive_rate(y_true: Any, y_pred: Any, scores: Any, task_type: str) -> dict[str, float]:
        seen.update(y_true=y_true, y_pred=y_pred, scores=scores, task_type=task_type)
        return {"positive_rate": float((y_pred == 1).mean())}

    fake_hooks(gate_metrics=positive_rate)
    model = LogisticRegression().fit(X, LABELS)
    metrics = gate_metrics(model, X, LABELS.tolist(), "classification")
    assert metrics["positive_rate"] == 0.5
    assert set(metrics) == {"accuracy", "f1", "roc_auc", "positive_rate"}
    assert seen["y_true"].tolist() == LABELS.tolist()
    assert seen["y_pred"].tolist() == model.predict(X).tolist()
    assert seen["scores"].shape == (6, 2)
    assert seen["task_type"] == "classification"


def test_a_regressor_gives_the_hook_no_scores(fake_hooks: Hooks) -> None:
    seen: list[Any] = []

    def max_error(y_true: Any, y_pred: Any, scores: Any, task_type: str) -> dict[str, float]:
        seen.append((scores, task_type))
        return {"max_error": float(np.abs(y_true - y_pred).max())}

    fake_hooks(gate_metrics=max_error)
    model = Ridge().fit(X, X[:, 0] * 2)
    metrics = gate_metrics(model, X, X[:, 0] * 2, "regression")
    assert set(metrics) == {"r2", "rmse", "mae", "max_error"}
    assert seen == [(None, "regression")]


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (
            [0.5],
            "the project's hook gate_metrics (fake_project_hooks.gate_metrics) returned list: "
            "return a dict of name to number",
        ),
        (
            {"accuracy": 1.0},
            "the project's hook gate_metrics (fake_project_hooks.gate_metrics) returned 'accuracy', "
            "a built-in metric: give it another name",
        ),
        (
            {"coverage": float("nan")},
            "the project's hook gate_metrics (fake_project_hooks.gate_metrics) returned coverage = nan: "
            "each value must be a finite number",
        ),
        (
            {"coverage": "high"},
            "the project's hook gate_metrics (fake_project_hooks.gate_metrics) returned coverage = 'high': "
            "each value must be a finite number",
        ),
        (
            {3: 1.0},
            "the project's hook gate_metrics (fake_project_hooks.gate_metrics) returned the metric name 3: "
            "names are strings",
        ),
    ],
)
def test_a_wrong_result_is_one_line_naming_the_hook(
    fake_hooks: Hooks, returned: object, message: str
) -> None:
    fake_hooks(gate_metrics=lambda *_: returned)
    model = LogisticRegression().fit(X, LABELS)
    with pytest.raises(HookError) as error:
        gate_metrics(model, X, LABELS, "classification")
    assert str(error.value) == message


def test_a_failing_hook_stops_the_step_with_one_line(
    fake_hooks: Hooks, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_: object) -> dict[str, float]:
        raise KeyError("segment\nwith a second line")

    fake_hooks(gate_metrics=broken)
    model = LogisticRegression().fit(X, LABELS)
    with pytest.raises(SystemExit) as exited:
        run_step(lambda: print(gate_metrics(model, X, LABELS, "classification")))
    assert exited.value.code == 1
    assert capsys.readouterr().err == (
        "error: the project's hook gate_metrics (fake_project_hooks.gate_metrics) failed: "
        "KeyError: 'segment\\nwith a second line'\n"
    )


def test_an_unknown_hook_name_is_a_bug_of_the_caller() -> None:
    with pytest.raises(ValueError, match=r"^unknown hook 'gate_metric': one of \("):
        call_hook("gate_metric")


def set_gate(params_file: Path, bound: str, metric: str, threshold: float) -> None:
    raw = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    raw["gate"][bound] = {**(raw["gate"][bound] or {}), metric: threshold}
    params_file.write_text(yaml.safe_dump(raw), encoding="utf-8")


def test_the_gate_judges_the_hooks_metrics_by_params_yaml(
    project: Path,
    train: Callable[[], None],
    fake_hooks: Hooks,
    task_type: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mlflow import MlflowClient

    def spread(y_true: Any, y_pred: Any, scores: Any, kind: str) -> dict[str, float]:
        return {"prediction_spread": float(np.std(y_pred.astype(float)))}

    fake_hooks(gate_metrics=spread)
    train()
    set_gate(project / "params.yaml", "max", "prediction_spread", 1e6)
    evaluate.main()
    written = json.loads((project / METRICS_FILE).read_text(encoding="utf-8"))
    assert 0 < written["prediction_spread"] < 1e6

    train()
    set_gate(project / "params.yaml", "max", "prediction_spread", 0.0)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        evaluate.main()
    params = load_params()
    name, alias = params.mlflow.model_name, params.mlflow.alias
    spread_value = json.loads((project / METRICS_FILE).read_text(encoding="utf-8"))[
        "prediction_spread"
    ]
    assert (
        f"  - prediction_spread = {spread_value:.4f} is above the maximum 0.0 "
        "(params.yaml gate.max.prediction_spread)\n"
    ) in capsys.readouterr().err
    client = MlflowClient()
    assert str(client.get_model_version_by_alias(name, alias).version) == "1"
    tagged = json.loads(client.get_model_version(name, "2").tags["gate.challenger_metrics"])
    assert tagged["prediction_spread"] == pytest.approx(spread_value)


@pytest.mark.parametrize("task_type", ["classification"])
def test_a_promotion_rule_refuses_before_the_deployment_and_the_move(
    project: Path,
    train: Callable[[], None],
    fake_hooks: Hooks,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from helpers import signing_key_pair
    from mlflow import MlflowClient

    monkeypatch.setenv("PROMOTE_BY", "alice")
    # promotion checks the version's signature first: the project has a key pair (make keys)
    signing_key_pair(project / "keys")
    train()
    evaluate.main()
    asked: list[dict[str, Any]] = []

    def office_hours(decision: dict[str, Any]) -> str | None:
        asked.append(decision)
        if decision["environment"] == "production":
            return "production moves on\n  weekdays only"
        return None

    fake_hooks(promotion_rule=office_hours)
    capsys.readouterr()
    promotion.main(["image-tag", "staging", "--image-tag", "abc123"])
    assert capsys.readouterr().out == "abc123\n"
    promotion.main(["move", "staging", "--image-tag", "abc123", "--reason", "release 1"])
    name = load_params().mlflow.model_name
    decision = asked[-1]
    assert {key: value for key, value in decision.items() if key != "gate"} == {
        "model_name": name,
        "version": "1",
        "environment": "staging",
        "from_alias": "champion",
        "image_tag": "abc123",
        "reason": "release 1",
        "by": "alice",
    }
    assert decision["gate"]["result"] == "promoted"
    assert decision["gate"]["champion_version"] == "none"
    assert set(decision["gate"]["challenger_metrics"]) == {"accuracy", "f1", "roc_auc"}

    refusal = (
        f"error: promotion of {name} version 1 to production refused by the project's "
        "promotion_rule: production moves on weekdays only\n"
    )
    for action in (["image-tag", "production"], ["move", "production", "--image-tag", "abc123"]):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            run_step(lambda action=action: promotion.main(action))
        assert exited.value.code == 1
        assert capsys.readouterr() == ("", refusal)
    client = MlflowClient()
    assert str(client.get_model_version_by_alias(name, "staging").version) == "1"
    assert "production" not in client.get_registered_model(name).aliases


@pytest.mark.parametrize("task_type", ["classification"])
def test_a_promotion_rule_must_return_a_reason_or_none(
    project: Path,
    train: Callable[[], None],
    fake_hooks: Hooks,
    capsys: pytest.CaptureFixture[str],
) -> None:
    train()
    evaluate.main()
    fake_hooks(promotion_rule=lambda decision: False)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        run_step(lambda: promotion.main(["image-tag", "staging", "--image-tag", "abc123"]))
    assert capsys.readouterr().err == (
        "error: the project's hook promotion_rule (fake_project_hooks.promotion_rule) returned "
        "False: return None to allow the promotion, or the reason to refuse it\n"
    )
