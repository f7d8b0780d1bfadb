"""Feature drift: the population stability index (PSI) of recent requests against the training data.

Each numeric feature keeps the quantile bins of its training values, each categorical
feature its categories and a last bin for categories unseen in training
(models/monitoring.json, written by the `reference` pipeline step); a missing number falls in
the top bin, a missing category in the unseen bin. Unseen categories are also counted. By
kind: a date or datetime (text in a request) is binned as its days since 1970-01-01, like a
number; a text of many values by the bucket of its hash, missing in a last bin (no value of
it is "unseen"). The
tracker holds the bin of every feature for the last `window` request rows in a ring buffer
with per-bin counts, so an update costs a few array operations whatever its number of rows;
the service queues its requests' rows and bins them together, every `QUEUED_ROWS` rows or at
the next scrape. A scrape computes, per feature,

    PSI = sum over bins of (a - e) * ln(a / e)

with `a` the share of recent rows and `e` the share of training rows in the bin. Both
shares are smoothed by half a row per bin (a Jeffreys prior), so an empty bin gives a large
but finite score. Without drift, `n * PSI` follows a chi-squared law with bins - 1 degrees
of freedom: the reference step warns when the threshold is within that noise.

A project's hook `drift_statistic(reference, live)` (mlopsify_runtime.hooks) replaces PSI for
the number features whose reference in models/monitoring.json holds training `values`: the
tracker then also keeps the window's raw values of those features, and the hook gets both as
lists of floats (missing values left out).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..kind_values import days_since_epoch, text_bucket

SMOOTHING = 0.5
# Request rows binned together: a single-record request then costs one list append, and a flush
# (about 150 us whatever its rows, up to the window) is paid once per 1,024 rows; a scrape flushes.
QUEUED_ROWS = 1024
logger = logging.getLogger(__name__)

Statistic = Callable[[Sequence[float], Sequence[float]], float]


def psi(counts: np.ndarray, expected: np.ndarray, rows: int, reference_rows: int) -> np.ndarray:
    """PSI per row of `counts` (features x bins) against `expected` shares of `reference_rows` rows."""
    bins = (counts.shape[1] - np.isnan(expected).sum(axis=1))[:, None]
    actual = (counts + SMOOTHING) / (rows + SMOOTHING * bins)
    reference = (np.nan_to_num(expected) * reference_rows + SMOOTHING) / (reference_rows + SMOOTHING * bins)
    terms = (actual - reference) * np.log(actual / reference)
    scores: np.ndarray = np.where(np.isnan(expected), 0.0, terms).sum(axis=1)
    return scores


class DriftTracker:
    """Sliding window of the last `window` request rows, binned per feature."""

    def __init__(
        self,
        reference: Mapping[str, Mapping[str, Any]],
        reference_rows: int,
        window: int,
        min_samples: int,
        statistic: Statistic | None = None,
    ) -> None:
        self.features = list(reference)
        self.window = window
        self.min_samples = min_samples
        self.reference_rows = reference_rows
        kinds = [reference[name].get("kind", "") for name in self.features]
        self._dates = [i for i, kind in enumerate(kinds) if kind in {"date", "datetime"}]
        self._buckets = {
            i: int(reference[name]["buckets"]) for i, name in enumerate(self.features) if kinds[i] == "text"
        }
        # per feature: the inner bin edges of a number or date, or the bin of each category (None)
        self._edges = [
            np.asarray(reference[name]["edges"], dtype=float) if "edges" in reference[name] else None
            for name in self.features
        ]
        self._categories = [
            {str(value): index for index, value in enumerate(reference[name].get("categories", []))}
            for name in self.features
        ]
        most = max(len(reference[name]["shares"]) for name in self.features)
        self.unseen = np.zeros(len(self.features), dtype=np.int64)
        # training shares, padded with NaN where a feature has fewer bins than the widest one
        self._expected = np.full((len(self.features), most), np.nan)
        for row, name in enumerate(self.features):
            shares = reference[name]["shares"]
            self._expected[row, : len(shares)] = shares
        self._numbers = [i for i, edges in enumerate(self._edges) if edges is not None]
        self._number_edges = [edges for edges in self._edges if edges is not None]
        self._ring = np.zeros((window, len(self.features)), dtype=np.int32)
        # the hook's features: index, training values; and their raw values in the window
        self.statistic = statistic
        self._custom = [
            (index, [float(value) for value in reference[name]["values"]])
            for index, name in enumerate(self.features)
            if statistic is not None and "edges" in reference[name] and "values" in reference[name]
        ]
        if statistic is not None and len(self._custom) < len(self._numbers):
            logger.warning("drift_statistic hook: number features without training values keep PSI")
        self._raw = np.full((window, len(self._custom)), np.nan)
        # decided once, not per request: which features are categories, and whether the numbers need a date's parsing
        self._category_indices = [i for i in range(len(self.features)) if self.is_category(i)]
        self._numbers_plain = not set(self._numbers) & set(self._dates)
        self._counts = np.zeros((len(self.features), most), dtype=np.int64)
        self._next = 0
        self.seen = 0
        self._queued: list[np.ndarray] = []  # request rows not binned yet (`queue`)
        self._queued_rows = 0

    def is_category(self, index: int) -> bool:
        """A category of the training data (a text of many values is binned by hash, never unseen)."""
        return self._edges[index] is None and index not in self._buckets

    def numbers(self, matrix: np.ndarray, columns: list[int], plain: bool = False) -> np.ndarray:
        """The `columns` of `matrix` as floats: a date as its days since 1970-01-01, None as NaN
        (`plain`: no date among them, one conversion for all)."""
        if plain:
            return np.asarray(matrix[:, columns], dtype=float)
        values = np.empty((len(matrix), len(columns)))
        for j, index in enumerate(columns):
            if index in self._dates:
                values[:, j] = [days_since_epoch(value) for value in matrix[:, index]]
            else:
                values[:, j] = np.asarray(matrix[:, index], dtype=float)
        return values

    @property
    def size(self) -> int:
        """Rows currently in the window."""
        return min(self.seen, self.window)

    def bins_of(self, matrix: np.ndarray) -> np.ndarray:
        """Bin index of every value of `matrix` (rows x features, in `self.features` order).

        A number's bin is the count of its feature's edges at or below it, `searchsorted(side="right")`
        per feature over all the rows (the service bins hundreds of queued rows at once: 3x faster
        than one comparison of every value with every edge); NaN (None) sorts after every edge, to
        the last bin. A category's bin is its index, or the last bin when training never saw it or
        it is missing.
        """
        bins = np.empty((len(matrix), len(self.features)), dtype=np.int32)
        if self._numbers:
            values = self.numbers(matrix, self._numbers, self._numbers_plain)  # None (missing) becomes NaN
            for column, (index, edges) in enumerate(zip(self._numbers, self._number_edges, strict=True)):
                bins[:, index] = np.searchsorted(edges, values[:, column], side="right")
        for i in self._category_indices:
            known = self._categories[i]
            unseen = len(known)
            bins[:, i] = [unseen if value is None else known.get(str(value), unseen) for value in matrix[:, i]]
        for i, buckets in self._buckets.items():
            bins[:, i] = [buckets if value is None else text_bucket(value, buckets) for value in matrix[:, i]]
        return bins

    def queue(self, matrix: np.ndarray) -> None:
        """Add request rows at the next read (`flush`), or once `QUEUED_ROWS` rows wait: what the service does."""
        self._queued.append(matrix)
        self._queued_rows += len(matrix)
        if self._queued_rows >= QUEUED_ROWS:
            self.flush()

    def flush(self) -> None:
        """Bin the queued rows now, in the order they came (before the window is read)."""
        if self._queued:
            queued, self._queued, self._queued_rows = self._queued, [], 0
            self.observe(queued[0] if len(queued) == 1 else np.concatenate(queued))

    def observe(self, matrix: np.ndarray) -> None:
        """Add request rows (features in `self.features` order), evicting the oldest past `window`."""
        for i in self._category_indices:  # every request counts, also those older than the window
            known = self._categories[i]
            self.unseen[i] += sum(1 for value in matrix[:, i] if value is not None and str(value) not in known)
        rows = self.bins_of(matrix[-self.window :])
        # All rows at once (a batch costs about what one row does): the slots they take, in ring order,
        # lose their old rows' counts (slots are filled from 0 before the first wrap), then gain the new.
        slots = (self._next + np.arange(len(rows))) % self.window
        filled = slots if self.seen >= self.window else slots[slots < self.seen]
        if len(filled):
            self._counts -= self._tally(self._ring[filled])
        self._ring[slots] = rows
        if self._custom:
            recent = matrix[-self.window :]
            self._raw[slots] = self.numbers(recent, [index for index, _ in self._custom])
        self._counts += self._tally(rows)
        self._next = (self._next + len(rows)) % self.window
        self.seen += len(matrix)  # every row counts, also those a batch longer than the window drops

    def _tally(self, rows: np.ndarray) -> np.ndarray:
        """Counts per feature and bin of `rows` of bin indices (features x bins, like `_counts`)."""
        features, bins = self._counts.shape
        flat = (np.arange(features) * bins + rows).ravel()
        return np.bincount(flat, minlength=features * bins).reshape(features, bins)

    def scores(self) -> dict[str, float]:
        """PSI per feature, or nothing while the window holds fewer than `min_samples` rows."""
        self.flush()
        if self.size < self.min_samples:
            return {}
        values = psi(self._counts.astype(float), self._expected, self.size, self.reference_rows).tolist()
        if self.statistic is not None:
            raw = self._raw[: self.size]
            for column, (index, reference) in enumerate(self._custom):
                live = raw[:, column]
                values[index] = float(self.statistic(reference, live[~np.isnan(live)].tolist()))
        return dict(zip(self.features, values, strict=True))


class DriftCollector(Collector):
    """Exports `model_feature_drift{feature}`, the window size and the unseen categories at each scrape."""

    def __init__(self, tracker: DriftTracker) -> None:
        self.tracker = tracker

    def collect(self) -> Iterator[Metric]:
        self.tracker.flush()
        drift = GaugeMetricFamily(
            "model_feature_drift",
            "Population stability index of the feature over the recent requests, against the training data.",
            labels=["feature"],
        )
        for feature, score in self.tracker.scores().items():
            drift.add_metric([feature], score)
        yield drift
        yield GaugeMetricFamily(
            "model_drift_window_rows",
            "Request rows in the drift window (no drift score before monitoring.drift.min_samples).",
            value=self.tracker.size,
        )
        unseen = CounterMetricFamily(
            "model_feature_unseen_categories",
            "Request values of a categorical feature that training never saw.",
            labels=["feature"],
        )
        for index, feature in enumerate(self.tracker.features):
            if self.tracker.is_category(index):
                unseen.add_metric([feature], float(self.tracker.unseen[index]))
        yield unseen
