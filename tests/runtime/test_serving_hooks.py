"""The project's hooks in the service: preprocess and postprocess around each prediction, and
drift_statistic for number features.

The project's hooks module is a module made here (types.ModuleType) that the tests put in place
of the entry point's by monkeypatching `mlopsify_runtime.hooks.hooks_module` (the function that
reads the entry point): installing a package that declares the entry point is not possible in
a test, and everything after that look-up is the runtime's own code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from serving_models import FEATURES, RECORD, TestClient, post, save_model, wait_ready
from test_monitoring import metric, request_rows, write_monitoring

import mlopsify_runtime.hooks
from mlopsify_runtime.serving import Settings, create_app
from mlopsify_runtime.serving.drift import DriftTracker

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


def use_hooks(monkeypatch: pytest.MonkeyPatch, **functions: Any) -> ModuleType:
    """A hooks module defining `functions`, as the project's entry point would name it."""
    module = ModuleType("project_hooks")
    for name, function in functions.items():
        setattr(module, name, function)
    monkeypatch.setattr(mlopsify_runtime.hooks, "hooks_module", lambda: module)
    return module


@pytest.fixture(scope="module")
def regression(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return save_model(tmp_path_factory.mktemp("hooks"), "regression")


def test_preprocess_changes_what_the_model_sees_and_postprocess_what_the_client_gets(
    regression: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, Any]] = []

    def preprocess(record: dict[str, Any]) -> dict[str, Any]:
        seen.append(dict(record))
        return {**record, "feature_a": 0.0}  # the model never sees feature_a

    def postprocess(record: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        # a numpy scalar in the answer is encoded as the number it is
        rounded = np.float64(round(answer["prediction"]))
        return {
            **answer,
            "prediction": round(answer["prediction"]),
            "colour": record["colour"],
            "rounded": rounded,
        }

    with TestClient(create_app(regression)) as client:  # no hooks: the reference answers
        wait_ready(client)
        plain = post(
            client, {"records": [{**RECORD, "feature_a": 0.0}, {**RECORD, "feature_a": 0.0}]}
        ).json()
    use_hooks(monkeypatch, preprocess=preprocess, postprocess=postprocess)
    with TestClient(create_app(regression)) as client:
        wait_ready(client)
        single = post(client, {"record": RECORD}).json()
        batch = post(
            client, {"records": [RECORD, {**RECORD, "feature_a": 9.0, "colour": "blue"}]}
        ).json()
    expected = round(plain["predictions"][0]["prediction"])
    assert single["prediction"] == expected
    assert (single["colour"], single["model_name"]) == ("red", "credit-risk")
    assert single["rounded"] == float(expected)
    assert [item["prediction"] for item in batch["predictions"]] == [
        expected,
        round(plain["predictions"][1]["prediction"]),
    ]
    assert [item["colour"] for item in batch["predictions"]] == ["red", "blue"]
    assert seen == [
        {"feature_a": 1.0, "feature_b": -0.5, "feature_c": 2.0, "colour": "red"},
        {"feature_a": 1.0, "feature_b": -0.5, "feature_c": 2.0, "colour": "red"},
        {"feature_a": 9.0, "feature_b": -0.5, "feature_c": 2.0, "colour": "blue"},
    ]
    assert list(seen[0]) == FEATURES


def test_a_failing_hook_is_a_500_in_the_one_error_shape(
    regression: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def preprocess(record: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("a bug of the project's hook")

    use_hooks(monkeypatch, preprocess=preprocess)
    with TestClient(create_app(regression)) as client:
        wait_ready(client)
        response = post(client, {"record": RECORD})
    assert response.status_code == 500
    assert response.json()["detail"] == "internal error: report the request_id"


def largest_gap(reference: Sequence[float], live: Sequence[float]) -> float:
    """A drift statistic of the project's: the distance between the means (0 is no drift)."""
    return abs(float(np.mean(live)) - float(np.mean(reference)))


def test_drift_statistic_replaces_psi_for_number_features_with_training_values() -> None:
    reference = {
        "a": {"edges": [0.0], "shares": [0.5, 0.5], "values": [-1.0, 1.0, -1.0, 1.0]},
        "b": {"edges": [0.0], "shares": [0.5, 0.5]},  # no training values: PSI
        "c": {"categories": ["x"], "shares": [1.0, 0.0]},
    }
    calls: list[tuple[list[float], list[float]]] = []

    def statistic(training: Sequence[float], live: Sequence[float]) -> float:
        calls.append((list(training), list(live)))
        return largest_gap(training, live)

    tracker = DriftTracker(reference, 4, window=3, min_samples=2, statistic=statistic)
    tracker.observe(
        np.array(
            [[5.0, 1.0, "x"], [7.0, -1.0, "x"], [None, 1.0, "x"], [9.0, 1.0, "x"]], dtype=object
        )
    )
    scores = tracker.scores()
    assert calls == [
        ([-1.0, 1.0, -1.0, 1.0], [7.0, 9.0])
    ]  # the window: the last 3 rows, missing left out
    assert scores["a"] == 8.0
    plain = DriftTracker(reference, 4, window=3, min_samples=2).scores
    assert plain() == {}  # nothing observed
    assert scores["b"] > 0 and scores["c"] >= 0


def test_the_service_exports_the_hook_s_drift_statistic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = save_model(tmp_path, "classification")
    monitoring_file = write_monitoring(tmp_path, "classification")
    content = json.loads(monitoring_file.read_text())
    content["reference"]["feature_a"]["values"] = [100.0, 100.0]  # far from every request value
    monitoring_file.write_text(json.dumps(content))
    use_hooks(monkeypatch, drift_statistic=largest_gap)
    rows = request_rows(60, seed=2)
    with TestClient(create_app(replace(settings, monitoring_file=monitoring_file))) as client:
        wait_ready(client)
        assert post(client, {"records": rows}).status_code == 200
        text = client.get("/metrics").text
    expected = largest_gap([100.0, 100.0], [row["feature_a"] for row in rows])
    assert metric(text, "model_feature_drift", feature="feature_a") == pytest.approx(expected)
    assert metric(text, "model_feature_drift", feature="feature_b") < 1  # PSI: no training values
