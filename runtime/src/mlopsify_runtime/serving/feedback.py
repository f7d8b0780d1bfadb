"""Quality in production: ground truth for earlier predictions, matched by their request id.

/predict returns a `request_id` per prediction; the service keeps the last
`monitoring.feedback_capacity` of them. POST /feedback with that id and the true label
(classification) or value (regression) pairs them; the last `monitoring.quality.window`
pairs give the live metrics, computed at each scrape by the functions of metrics.py that the
quality gate uses (accuracy, f1, roc_auc, for two classes or more; or r2, rmse, mae), once
there are `monitoring.quality.min_samples` of them.

The store is in memory, per replica: with several replicas, send the feedback to the replica
that predicted, or join predictions and ground truth from the prediction logs instead
(docs/runtime/monitoring.md).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..metrics import classification_metrics, regression_metrics


@dataclass(frozen=True)
class Pending:
    """A prediction waiting for its ground truth."""

    value: int | float | str
    probabilities: dict[str, float] | None  # class probabilities by label text (classification)


class PredictionStore:
    """The last `capacity` predictions by request id; the oldest is forgotten first."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, Pending] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._items

    def add(self, request_id: str, pending: Pending) -> None:
        self._items[request_id] = pending
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def take(self, request_id: str) -> Pending | None:
        """The prediction of `request_id`, removed so that the same truth cannot count twice."""
        return self._items.pop(request_id, None)


class LiveQuality:
    """Predictions paired with their ground truth, the last `window` of them."""

    def __init__(self, task_type: str, window: int, min_samples: int, classes: list[Any] | None = None) -> None:
        self.task_type = task_type
        self.min_samples = min_samples
        self.classes = list(classes or [])  # the model's classes, in the order of its probabilities
        self._pairs: deque[tuple[Pending, int | float | str]] = deque(maxlen=window)

    def __len__(self) -> int:
        return len(self._pairs)

    def add(self, pending: Pending, actual: int | float | str) -> None:
        self._pairs.append((pending, actual))

    def metrics(self) -> dict[str, float]:
        """The live metrics, or nothing before `min_samples` pairs."""
        if len(self._pairs) < self.min_samples:
            return {}
        predicted = [pending.value for pending, _ in self._pairs]
        actual = [truth for _, truth in self._pairs]
        if self.task_type == "regression":
            return regression_metrics([float(value) for value in actual], [float(value) for value in predicted])
        keys = [str(label) for label in self.classes]
        scores = [pending.probabilities for pending, _ in self._pairs]
        probabilities = None
        if keys and all(score is not None and set(keys) <= set(score) for score in scores):
            probabilities = np.array([[score[key] for key in keys] for score in scores if score is not None])
        return classification_metrics(actual, predicted, self.classes, probabilities)


class QualityCollector(Collector):
    """Exports `model_live_quality{metric}` and the number of labelled predictions in the window."""

    def __init__(self, quality: LiveQuality, store: PredictionStore) -> None:
        self.quality = quality
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "model_live_quality",
            "Quality of the recent predictions that received ground truth (same metrics as the quality gate).",
            labels=["metric"],
        )
        for metric, value in self.quality.metrics().items():
            gauge.add_metric([metric], value)
        yield gauge
        yield GaugeMetricFamily(
            "model_live_quality_samples",
            "Predictions with ground truth in the quality window.",
            value=len(self.quality),
        )
        yield GaugeMetricFamily(
            "model_feedback_pending",
            "Predictions kept in memory, waiting for ground truth.",
            value=len(self.store),
        )
