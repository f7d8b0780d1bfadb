"""Quality in production: ground truth for earlier predictions, matched by their request id.

/predict returns a `request_id` per prediction; the service keeps the last
`monitoring.feedback_capacity` predictions, a request's at once (`PredictionStore`). POST /feedback with that id and the true label
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
from dataclasses import dataclass, field
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


@dataclass
class _Batch:
    """The predictions of one request, as the model gave them."""

    values: list[Any]
    probabilities: np.ndarray | None  # rows x classes (classification)
    keys: list[str]  # the classes as text, the probabilities' keys
    start: int = 0  # the rows before it are forgotten (older than the last `capacity` predictions)
    taken: set[int] = field(default_factory=set)  # the rows whose ground truth came


class PredictionStore:
    """The last `capacity` predictions, kept by request (a batch is one write), found by request id.

    A request id is its request's batch id (24 hex characters) and the record's index (8 hex
    characters): the store keeps each request's arrays under its batch id and forgets the oldest
    rows first.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._batches: OrderedDict[str, _Batch] = OrderedDict()
        self._kept = 0  # rows not forgotten yet, answered or not
        self._taken = 0  # of which answered

    def __len__(self) -> int:
        """Predictions waiting for their ground truth."""
        return self._kept - self._taken

    def __contains__(self, request_id: object) -> bool:
        return isinstance(request_id, str) and self._find(request_id) is not None

    def add(
        self, batch_id: str, values: list[Any], probabilities: np.ndarray | None = None, keys: list[str] | None = None
    ) -> None:
        """Keep the predictions of one request (request ids: `batch_id` and each row's index)."""
        self._batches[batch_id] = _Batch(values, probabilities, keys or [])
        self._kept += len(values)
        while self._kept > self.capacity:
            oldest_id, oldest = next(iter(self._batches.items()))
            forget = min(self._kept - self.capacity, len(oldest.values) - oldest.start)
            oldest.start += forget
            answered = {index for index in oldest.taken if index < oldest.start}
            oldest.taken -= answered
            self._kept -= forget
            self._taken -= len(answered)
            if oldest.start == len(oldest.values):
                del self._batches[oldest_id]

    def _find(self, request_id: str) -> tuple[_Batch, int] | None:
        batch = self._batches.get(request_id[:24]) if len(request_id) == 32 else None
        if batch is None:
            return None
        suffix = request_id[24:]
        try:
            index = int(suffix, 16)
        except ValueError:
            return None
        if suffix != f"{index:08x}" or not batch.start <= index < len(batch.values) or index in batch.taken:
            return None
        return batch, index

    def take(self, request_id: str) -> Pending | None:
        """The prediction of `request_id`, marked answered so that the same truth cannot count twice."""
        found = self._find(request_id)
        if found is None:
            return None
        batch, index = found
        batch.taken.add(index)
        self._taken += 1
        probabilities = None
        if batch.probabilities is not None:
            probabilities = dict(zip(batch.keys, batch.probabilities[index].tolist(), strict=True))
        return Pending(batch.values[index], probabilities)


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
