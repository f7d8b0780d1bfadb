"""Model monitoring inside the service: feature drift, live quality and the alert thresholds.

`install` reads models/monitoring.json (written by the `reference` pipeline step from the
training data and params.yaml), subscribes the drift tracker and the prediction store to
every /predict, adds POST /feedback, and registers the collectors that export:

- `model_feature_drift{feature}`: PSI of the recent requests (drift.py),
- `model_live_quality{metric}`: quality of predictions with ground truth (feedback.py),
- `model_feedback_total{outcome}`: ground truth received, matched or unknown,
- `model_alert_threshold{alert,metric,bound}`: the thresholds of params.yaml that the alert
  rules compare with (their one source): monitoring/prometheus/rules.yml, or with Kubernetes
  the PrometheusRule of deploy/k8s/components/monitoring that rules.yml is made from.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel

from ..hooks import hook
from .app import PredictionEvent, ServingState
from .drift import DriftCollector, DriftTracker
from .feedback import LiveQuality, PredictionStore, QualityCollector
from .model import LoadedModel
from .schemas import InputError

logger = logging.getLogger(__name__)


class ThresholdCollector(Collector):
    """Exports the thresholds of params.yaml as `model_alert_threshold{alert,metric,bound}`."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "model_alert_threshold",
            "Thresholds of params.yaml that the alert rules compare with (by alert name).",
            labels=["alert", "metric", "bound"],
        )
        for row in self.rows:
            family.add_metric([row["alert"], row.get("metric", ""), row.get("bound", "")], float(row["value"]))
        yield family


class Monitoring:
    """Drift tracker, prediction store and live quality of one service."""

    def __init__(self, config: dict[str, Any], state: ServingState) -> None:
        settings = config["settings"]
        self.config = config
        self.state = state
        self.task_type: str = config["task_type"]
        self.tracker = DriftTracker(
            config["reference"],
            config["training_rows"],
            settings["drift"]["window"],
            settings["drift"]["min_samples"],
            hook("drift_statistic"),  # the project's statistic for number features, when it has one
        )
        self.store = PredictionStore(settings["feedback_capacity"])
        self.quality = LiveQuality(self.task_type, settings["quality"]["window"], settings["quality"]["min_samples"])
        self.feedback = Counter(
            "model_feedback_total",
            "Ground truth received on /feedback: matched to a prediction, or unknown.",
            ["outcome"],
            registry=state.metrics.registry,
        )
        for outcome in ("matched", "unknown"):
            self.feedback.labels(outcome)
        self._columns: tuple[int, list[int] | None] | None = None

    def _column_order(self, model: LoadedModel) -> list[int] | None:
        """Indices that put the model's feature columns in the reference's order (None: same order)."""
        if self._columns is None or self._columns[0] != id(model):
            missing = sorted(set(self.tracker.features) - set(model.features))
            if missing:
                raise ValueError(f"models/monitoring.json has features the model lacks: {missing}")
            order = [model.features.index(name) for name in self.tracker.features]
            self._columns = (
                id(model),
                None if order == list(range(len(model.features))) else order,
            )
        return self._columns[1]

    def on_prediction(self, event: PredictionEvent) -> None:
        """Listener of /predict: feed the drift window and keep the predictions for feedback."""
        order = self._column_order(event.model)
        self.tracker.queue(event.matrix if order is None else event.matrix[:, order])
        if self.quality.classes != event.model.classes:
            self.quality.classes = list(event.model.classes)
        scored = event.scored
        self.store.add(event.batch_id, scored.values, scored.probabilities, event.model.keys)

    def record(self, feedback: BaseModel) -> dict[str, Any]:
        """Pair `feedback` (the Feedback model of schemas.py) with its prediction; raises `InputError`
        for an unknown id or a wrong outcome."""
        model = self.state.model
        if model is None:
            raise InputError(503, "the model is not loaded yet")
        request_id: str = feedback.request_id  # type: ignore[attr-defined]
        if request_id not in self.store:
            self.feedback.labels("unknown").inc()
            raise InputError(
                404,
                f"request_id {request_id!r} is unknown: never issued, already answered, or older than "
                f"the last {self.store.capacity} predictions",
            )
        actual = self._check_actual(feedback.actual, model)  # type: ignore[attr-defined]
        pending = self.store.take(request_id)
        assert pending is not None  # checked above, and nothing awaits in between
        self.quality.add(pending, actual)
        self.feedback.labels("matched").inc()
        return {"request_id": request_id, "prediction": pending.value, "actual": actual}

    def _check_actual(self, actual: int | float | str, model: LoadedModel) -> int | float | str:
        if self.task_type == "regression":
            if isinstance(actual, (str, bool)) or not math.isfinite(actual):
                raise InputError(422, "actual must be a finite number for a regression model")
            return float(actual)
        by_text = {str(label): label for label in model.classes}
        if str(actual) not in by_text:
            raise InputError(422, f"actual {actual!r} is not one of the model's classes {sorted(by_text)}")
        label: int | float | str = by_text[str(actual)]
        return label


def install(state: ServingState, path: Path) -> Monitoring:
    """Add drift, live quality and /feedback to the service of `state` (`path`: models/monitoring.json)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: run the pipeline (`dvc repro reference`) or set MONITORING_FILE; "
            "the service refuses to run unmonitored"
        )
    config = json.loads(path.read_text(encoding="utf-8"))
    monitoring = Monitoring(config, state)
    registry = state.metrics.registry
    registry.register(DriftCollector(monitoring.tracker))
    registry.register(QualityCollector(monitoring.quality, monitoring.store))
    registry.register(ThresholdCollector(config["thresholds"]))
    state.prediction_listeners.append(monitoring.on_prediction)
    state.feedback = monitoring.record  # app.py adds POST /feedback with the spec's Feedback model
    logger.info("monitoring %d features from %s", len(monitoring.tracker.features), path)
    return monitoring
