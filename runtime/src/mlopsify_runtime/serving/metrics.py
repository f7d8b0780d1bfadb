"""Prometheus metrics of the service, in a registry of its own (one per application).

Names are a contract with the alert rules and dashboards:
`model_requests_total{route,status}`, `model_request_duration_seconds{route}`,
`model_predictions_total{outcome}`, `model_info{model_name,model_version,run_id,git_commit}`,
`model_trained_timestamp_seconds`, `model_signature_failures_total`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Callable
from itertools import pairwise

import numpy as np
import prometheus_client
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from .model import LoadedModel, Scored

disable_created_metrics: Callable[[], None] = prometheus_client.disable_created_metrics
disable_created_metrics()  # no `*_created` series: they double the output and nothing reads them

# A 1-50 ms service: fine buckets where the SLO lives, a few coarse ones for outliers.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
)


def bucket_labels(edges: tuple[float, ...]) -> list[str]:
    """Regression outcome labels: `le_50`, `50_100`, ..., `gt_300` for edges 50, 100, ..., 300."""
    text = [f"{edge:g}" for edge in edges]
    middle = [f"{low}_{high}" for low, high in pairwise(text)]
    return [f"le_{text[0]}", *middle, f"gt_{text[-1]}"]


class ServiceMetrics:
    """The metric objects and the helpers that update them."""

    def __init__(self, regression_buckets: tuple[float, ...]) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.requests = Counter(
            "model_requests_total",
            "HTTP requests by route and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "model_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "model_predictions_total",
            "Predictions by class label or regression value bucket.",
            ["outcome"],
            registry=self.registry,
        )
        self.info = Gauge(
            "model_info",
            "The served model (always 1).",
            ["model_name", "model_version", "run_id", "git_commit"],
            registry=self.registry,
        )
        self.trained = Gauge(
            "model_trained_timestamp_seconds",
            "When the served model was trained (Unix time).",
            registry=self.registry,
        )
        self.signature_failures = Counter(
            "model_signature_failures_total",
            "Models refused at start-up: unsigned, or changed after signing.",
            registry=self.registry,
        )
        self._edges = regression_buckets
        self._bucket_labels = bucket_labels(regression_buckets)
        self._timed: dict[str, Histogram] = {}
        self._counted: dict[tuple[str, int], Counter] = {}
        self._outcomes: dict[str, Counter] = {}

    def model_loaded(self, model: LoadedModel) -> None:
        info = model.info
        self.info.labels(info.name, info.version, info.run_id, info.git_commit).set(1)
        self.trained.set(info.trained_at)
        if model.task_type == "classification":
            for label in model.classes:  # every class shows up at 0 before its first prediction
                self.predictions.labels(str(label))
        else:
            for label in self._bucket_labels:
                self.predictions.labels(label)

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        """Count and time one request (the labelled children are looked up once, then reused)."""
        timed = self._timed.get(route)
        if timed is None:
            timed = self._timed[route] = self.latency.labels(route)
        timed.observe(seconds)
        counted = self._counted.get((route, status))
        if counted is None:
            counted = self._counted[(route, status)] = self.requests.labels(route, str(status))
        counted.inc()

    def count_predictions(self, model: LoadedModel, scored: Scored) -> None:
        """One increment per outcome, counted for the whole batch by numpy: a few calls per request."""
        if scored.best is not None:  # a classifier: the index of each row's class
            labels, indices = model.keys, scored.best
        elif model.task_type == "regression":  # the bucket of each value (an edge belongs to the one below it)
            labels = self._bucket_labels
            indices = np.searchsorted(self._edges, np.asarray(scored.values, dtype=np.float64), side="left")
        else:  # a classifier without probabilities: its labels as they come
            for outcome, count in Tally(map(str, scored.values)).items():
                self.predictions.labels(outcome).inc(count)
            return
        if len(indices) == 1:  # one record: its outcome alone
            self._outcome(labels[int(indices[0])]).inc()
            return
        counts = np.bincount(indices, minlength=len(labels)).tolist()
        for label, count in zip(labels, counts, strict=True):
            if count:
                self._outcome(label).inc(count)

    def _outcome(self, label: str) -> Counter:
        """The prediction counter of `label` (its labelled child, looked up once)."""
        counter = self._outcomes.get(label)
        if counter is None:
            counter = self._outcomes[label] = self.predictions.labels(label)
        return counter

    def outcome(self, value: float) -> str:
        """The bucket label of a regression value (an edge belongs to the bucket below it)."""
        return self._bucket_labels[bisect_left(self._edges, value)]
