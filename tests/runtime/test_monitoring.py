"""Monitoring: reference statistics, drift, ground truth and live quality, exported thresholds,
and the service with monitoring on (a models/monitoring.json) and off."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from serving_models import (
    FEATURES,
    RECORD,
    TASK_TYPES,
    TestClient,
    post,
    save_model,
    training_frame,
    wait_ready,
)

from mlopsify_runtime.reference import (
    parse_monitoring,
    psi_noise_floor,
    reference_statistics,
    thresholds,
)
from mlopsify_runtime.serving import Settings, create_app
from mlopsify_runtime.serving.app import batch_request_ids
from mlopsify_runtime.serving.drift import QUEUED_ROWS, DriftTracker
from mlopsify_runtime.serving.feedback import LiveQuality, Pending, PredictionStore
from mlopsify_runtime.spec import describe

pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")

NUMBERS = ["feature_a", "feature_b", "feature_c"]
NUMBER_SPEC = {"features": NUMBERS, "columns": {name: {"type": "number"} for name in NUMBERS}}
# The monitoring section of the template's params.yaml (its defaults).
MONITORING = {
    "drift": {"bins": 10, "window": 500, "min_samples": 200, "threshold": 0.2},
    "quality": {"window": 200, "min_samples": 50},
    "feedback_capacity": 10000,
    "retrain_period_days": 30,
    "slo": {"latency_p99_seconds": 0.1, "max_error_ratio": 0.01},
}
GATE = {"min": {"f1": 0.9, "accuracy": 0.5}, "max": {}}


def normal_frame(rows: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 2)), columns=NUMBERS[:2])
    frame["feature_c"] = rng.integers(0, 2, size=rows).astype(float)  # a binary feature
    return frame


def tracker_for(frame: pd.DataFrame, window: int = 500, min_samples: int = 200) -> DriftTracker:
    return DriftTracker(
        reference_statistics(frame, NUMBER_SPEC, 10), len(frame), window, min_samples
    )


def test_reference_bins_hold_the_training_shares() -> None:
    statistics = reference_statistics(normal_frame(), NUMBER_SPEC, 10)
    assert len(statistics["feature_a"]["edges"]) == 9
    assert statistics["feature_a"]["shares"] == pytest.approx([0.1] * 10, abs=0.001)
    assert len(statistics["feature_c"]["edges"]) <= 2  # repeated quantiles collapse
    for stats in statistics.values():
        assert sum(stats["shares"]) == pytest.approx(1.0)
        assert len(stats["shares"]) == len(stats["edges"]) + 1


def test_the_default_monitoring_section_is_valid_and_above_the_noise() -> None:
    settings = parse_monitoring(MONITORING)
    assert settings.drift.threshold > psi_noise_floor(
        settings.drift.bins, settings.drift.min_samples
    )
    with pytest.raises(
        ValueError, match=r"monitoring.drift.min_samples must be in 1..drift.window"
    ):
        parse_monitoring({**MONITORING, "drift": {**MONITORING["drift"], "min_samples": 0}})


def test_thresholds_come_from_the_monitoring_section_and_the_gate() -> None:
    rows = thresholds(parse_monitoring(MONITORING), GATE["min"], GATE["max"])
    by_alert = {(row["alert"], row.get("metric", "")): row["value"] for row in rows}
    assert by_alert[("ModelFeatureDrift", "")] == 0.2
    assert by_alert[("ModelLatencySLOBreach", "")] == 0.1
    assert by_alert[("ModelStale", "")] == 30 * 86400
    assert by_alert[("ModelLiveQualityBelowGate", "f1")] == 0.9
    assert by_alert[("ModelLiveQualityBelowGate", "accuracy")] == 0.5


def test_drift_stays_low_on_training_like_data_and_rises_on_shifted_data() -> None:
    tracker = tracker_for(normal_frame())
    same = normal_frame(500, seed=1)[NUMBERS].to_numpy()
    tracker.observe(same[:100])
    assert tracker.scores() == {}  # under min_samples: no score yet
    tracker.observe(same[100:])
    assert max(tracker.scores().values()) < 0.1
    shifted = same.copy()
    shifted[:, 0] += 1.5
    tracker.observe(shifted)  # the window (500 rows) now holds shifted rows only
    scores = tracker.scores()
    assert scores["feature_a"] > 0.5
    assert scores["feature_b"] < 0.1
    tracker.observe(same)  # and forgets them once normal traffic fills the window again
    assert max(tracker.scores().values()) < 0.1


def test_queued_rows_are_binned_as_observed_ones_before_any_read() -> None:
    total = (
        3 * QUEUED_ROWS
    )  # requests of 7 rows: binned QUEUED_ROWS rows at a time, then at the read
    rows = normal_frame(total, seed=3)[NUMBERS].to_numpy()
    observed, queued = tracker_for(normal_frame()), tracker_for(normal_frame())
    for start in range(0, total, 7):
        observed.observe(rows[start : start + 7])
        queued.queue(rows[start : start + 7])
    assert 0 < queued.seen < observed.seen == total
    assert queued.scores() == observed.scores()
    assert (queued._counts == observed._counts).all() and queued.seen == total


def test_categorical_drift_counts_shifted_and_unseen_categories() -> None:
    rng = np.random.default_rng(0)
    colors = ["red", "green", "blue"]
    frame = pd.DataFrame(
        {"size": rng.normal(size=2000), "color": rng.choice(colors, size=2000, p=[0.6, 0.3, 0.1])}
    )
    spec: dict[str, Any] = {"features": ["size", "color"], "columns": {"size": {"type": "number"}}}
    spec["columns"]["color"] = {"type": "category", "categories": sorted(colors)}
    statistics = reference_statistics(frame, spec, 10)
    assert statistics["color"]["categories"] == ["blue", "green", "red"]
    assert statistics["color"]["shares"] == pytest.approx(
        [0.1, 0.3, 0.6, 0.0], abs=0.03
    )  # last: missing
    tracker = DriftTracker(statistics, len(frame), 300, 100)

    def requests(colors_drawn: np.ndarray) -> np.ndarray:
        matrix = np.empty((len(colors_drawn), 2), dtype=object)
        matrix[:, 0] = rng.normal(size=len(colors_drawn)).tolist()
        matrix[:, 1] = colors_drawn.tolist()
        return matrix

    tracker.observe(requests(rng.choice(colors, size=300, p=[0.6, 0.3, 0.1])))
    assert tracker.scores()["color"] < 0.1
    assert tracker.unseen.tolist() == [0, 0]
    tracker.observe(requests(rng.choice(["blue", "purple"], size=300, p=[0.8, 0.2])))
    assert tracker.scores()["color"] > 1.0
    assert tracker.scores()["size"] < 0.1
    assert 0 < tracker.unseen[1] < 300


def test_the_window_counts_exactly_its_last_rows_whatever_the_batch_sizes() -> None:
    """Batches are added at once; the counts must be those of the last `window` rows, one by one."""
    rng = np.random.default_rng(1)
    reference = {
        name: {"edges": [-1.0, 0.0, 1.0], "shares": [0.2, 0.3, 0.3, 0.2]} for name in NUMBERS
    }
    tracker = DriftTracker(reference, 100, 7, 1)
    history: list[list[int]] = []
    for _ in range(200):
        batch = rng.normal(size=(int(rng.integers(1, 12)), len(NUMBERS)))
        tracker.observe(batch)
        history.extend(tracker.bins_of(batch).tolist())
        expected = np.zeros_like(tracker._counts)
        for row in history[-7:]:
            for feature, bin_index in enumerate(row):
                expected[feature, bin_index] += 1
        assert (tracker._counts == expected).all()


def test_the_store_keeps_the_last_predictions_a_request_at_a_time() -> None:
    store = PredictionStore(capacity=5)
    first, first_ids = batch_request_ids(3)
    second, second_ids = batch_request_ids(4)
    assert [request_id[:24] for request_id in first_ids] == [first] * 3
    assert [request_id[24:] for request_id in first_ids] == ["00000000", "00000001", "00000002"]
    store.add(
        first, ["no", "yes", "no"], np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), ["no", "yes"]
    )
    assert store.take(first_ids[1]) == Pending("yes", {"no": 0.2, "yes": 0.8})
    assert first_ids[1] not in store  # the same truth cannot count twice
    assert len(store) == 2
    store.add(second, [1.0, 2.0, 3.0, 4.0])  # 7 predictions: the oldest two are forgotten
    assert [request_id in store for request_id in first_ids] == [False, False, True]
    assert len(store) == 5
    assert store.take(second_ids[3]) == Pending(4.0, None)
    unknown = [
        first_ids[2].upper(),
        first_ids[2][:24] + "00000009",
        first_ids[2][:24] + "+0000002",
        "x" * 32,
        "",
    ]
    assert [request_id in store for request_id in unknown] == [False] * len(unknown)
    assert store.take(first_ids[2]) == Pending("no", {"no": 0.6, "yes": 0.4})
    assert len(store) == 3


def test_live_quality_of_three_classes_uses_the_gate_metrics() -> None:
    quality = LiveQuality("classification", window=50, min_samples=6, classes=[0, 1, 2])
    truth = [0, 1, 2, 0, 1, 2]
    guesses = [0, 1, 2, 0, 2, 1]
    for actual, guess in zip(truth, guesses, strict=True):
        probabilities = {str(label): 0.8 if label == guess else 0.1 for label in (0, 1, 2)}
        quality.add(Pending(guess, probabilities), actual)
    metrics = quality.metrics()
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["f1"] == pytest.approx((1 + 0.5 + 0.5) / 3)  # macro average over the classes
    assert 0 < metrics["roc_auc"] < 1


def write_monitoring(root: Path, task_type: str) -> Path:
    """models/monitoring.json as the `reference` step writes it, for the model of `save_model`."""
    frame = training_frame()
    target = "label" if task_type == "classification" else "value"
    raw = {**MONITORING, "quality": {"window": 20, "min_samples": 10}}
    raw["drift"] = {**raw["drift"], "window": 100, "min_samples": 50}
    settings = parse_monitoring(raw)
    gate = GATE if task_type == "classification" else {"min": {}, "max": {"rmse": 5.0}}
    path = root / "models" / "monitoring.json"
    content = {
        "task_type": task_type,
        "features": FEATURES,
        "training_rows": len(frame),
        "reference": reference_statistics(
            frame, describe(frame, FEATURES, target, task_type), settings.drift.bins
        ),
        "settings": asdict(settings),
        "thresholds": thresholds(settings, gate["min"], gate["max"]),
    }
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


def metric(text: str, name: str, **labels: str) -> float:
    """The value of the sample `name{labels}` in the exposition `text`."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    raise AssertionError(f"no sample {name}{labels}")


def request_rows(rows: int, seed: int) -> list[dict[str, Any]]:
    frame = training_frame(rows, seed)[FEATURES]
    return [dict(zip(FEATURES, row, strict=True)) for row in frame.to_numpy().tolist()]


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_service_exports_drift_live_quality_and_thresholds(tmp_path: Path, task_type: str) -> None:
    settings = save_model(tmp_path, task_type)
    settings = replace(settings, monitoring_file=write_monitoring(tmp_path, task_type))
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        predictions = post(client, {"records": request_rows(60, seed=2)}).json()["predictions"]
        for item in predictions[:12]:  # ground truth that disagrees with every prediction
            wrong = (
                1 - item["prediction"]
                if task_type == "classification"
                else item["prediction"] + 100
            )
            response = post(
                client, {"request_id": item["request_id"], "actual": wrong}, "/feedback"
            )
            assert response.status_code == 200, response.text
            assert response.json() == {
                "request_id": item["request_id"],
                "prediction": item["prediction"],
                "actual": wrong,
            }
        again = post(client, {"request_id": predictions[0]["request_id"], "actual": 1}, "/feedback")
        unknown = post(client, {"request_id": "0" * 32, "actual": 1}, "/feedback")
        invalid = post(
            client, {"request_id": predictions[20]["request_id"], "actual": "yes"}, "/feedback"
        )
        extra = post(client, {"request_id": "x", "actual": 1, "note": "?"}, "/feedback")
        text = client.get("/metrics").text
    assert again.status_code == 404
    assert again.json()["detail"] == (
        f"request_id {predictions[0]['request_id']!r} is unknown: never issued, already answered, "
        "or older than the last 10000 predictions"
    )
    assert unknown.status_code == 404
    assert invalid.status_code == 422
    if task_type == "classification":
        assert (
            invalid.json()["detail"] == "actual 'yes' is not one of the model's classes ['0', '1']"
        )
    else:
        assert invalid.json()["detail"] == "actual must be a finite number for a regression model"
    assert extra.status_code == 422
    assert extra.json()["detail"] == "invalid feedback body"
    assert extra.json()["errors"] == [
        {"loc": "note", "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
    ]
    assert metric(text, "model_feature_drift", feature="feature_a") >= 0
    assert metric(text, "model_drift_window_rows") == 60
    assert metric(text, "model_feedback_total", outcome="matched") == 12
    assert metric(text, "model_feedback_total", outcome="unknown") == 2
    assert metric(text, "model_live_quality_samples") == 12
    assert metric(text, "model_feature_unseen_categories_total", feature="colour") == 0
    if task_type == "classification":
        assert metric(text, "model_live_quality", metric="accuracy") == 0.0
        gate = metric(
            text,
            "model_alert_threshold",
            alert="ModelLiveQualityBelowGate",
            metric="f1",
            bound="min",
        )
        assert gate == 0.9
    else:
        assert metric(text, "model_live_quality", metric="rmse") == pytest.approx(100.0)
    assert (
        metric(text, "model_alert_threshold", alert="ModelFeatureDrift", metric="", bound="") == 0.2
    )


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_without_a_monitoring_file_the_service_has_no_feedback_and_no_drift(
    tmp_path: Path, task_type: str
) -> None:
    settings = save_model(tmp_path, task_type)
    assert settings.monitoring_file is None
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        prediction = post(client, {"record": RECORD}).json()
        feedback = post(client, {"request_id": prediction["request_id"], "actual": 1}, "/feedback")
        text = client.get("/metrics").text
        paths = set(client.get("/openapi.json").json()["paths"])
    assert feedback.status_code == 404
    assert feedback.json()["detail"] == "Not Found"
    assert "model_feature_drift" not in text
    assert "model_feedback_total" not in text
    assert "/feedback" not in paths


def test_a_monitoring_file_that_is_missing_stops_the_service(tmp_path: Path) -> None:
    settings = replace(Settings(), monitoring_file=tmp_path / "monitoring.json")
    with pytest.raises(FileNotFoundError, match="the service refuses to run unmonitored"):
        create_app(settings)
