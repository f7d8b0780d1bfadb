"""Reference statistics for drift detection, saved with the model as models/monitoring.json.

Each numeric training feature is cut into quantile bins (`monitoring.drift.bins` in
params.yaml); the file keeps the bin edges and the share of training rows in each bin
(missing values in the top bin). Each categorical feature keeps its categories and their
shares, plus a last bin for missing values and, in the service, categories unseen in
training. By kind (kinds.py): a date or datetime is binned as its days since 1970-01-01, a
text by the bucket of its hash (`buckets`, then a last bin for missing values); a boolean is a
number. Next to them: the monitoring settings of params.yaml and the quality gate, its absolute
bounds and its margins over the naive baseline measured on the test split (baseline.py). The
service reads only this file: it computes the population stability index (PSI) of recent
requests against these shares, and exports the thresholds for the alert rules, so
params.yaml is their one source.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy.stats import chi2

from .baseline import baseline_for, live_bounds
from .config import FEATURES_FILE, PARAMS_FILE, TRAIN_DATA, load_params, run_step
from .kind_values import days_since_epoch, text_bucket
from .kinds import HASH_BUCKETS
from .spec import Spec, number_column, read_frame, read_spec

MONITORING_FILE = Path("models/monitoring.json")
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class DriftSettings:
    bins: int
    window: int
    min_samples: int
    threshold: float


@dataclass(frozen=True)
class QualitySettings:
    window: int
    min_samples: int


@dataclass(frozen=True)
class MonitoringSettings:
    """The `monitoring:` section of params.yaml."""

    drift: DriftSettings
    quality: QualitySettings
    feedback_capacity: int
    retrain_period_days: float
    latency_p99_seconds: float
    max_error_ratio: float


def parse_monitoring(raw: dict[str, Any]) -> MonitoringSettings:
    """Typed settings from the `monitoring:` mapping; an impossible value fails with its name."""
    settings = MonitoringSettings(
        drift=DriftSettings(**raw["drift"]),
        quality=QualitySettings(**raw["quality"]),
        feedback_capacity=int(raw["feedback_capacity"]),
        retrain_period_days=float(raw["retrain_period_days"]),
        latency_p99_seconds=float(raw["slo"]["latency_p99_seconds"]),
        max_error_ratio=float(raw["slo"]["max_error_ratio"]),
    )
    drift, quality = settings.drift, settings.quality
    checks = [
        (drift.bins >= 2, "monitoring.drift.bins must be at least 2"),
        (1 <= drift.min_samples <= drift.window, "monitoring.drift.min_samples must be in 1..drift.window"),
        (drift.threshold > 0, "monitoring.drift.threshold must be positive"),
        (1 <= quality.min_samples <= quality.window, "monitoring.quality.min_samples must be in 1..quality.window"),
        (settings.feedback_capacity > 0, "monitoring.feedback_capacity must be positive"),
        (settings.retrain_period_days > 0, "monitoring.retrain_period_days must be positive"),
        (settings.latency_p99_seconds > 0, "monitoring.slo.latency_p99_seconds must be positive"),
        (0 < settings.max_error_ratio < 1, "monitoring.slo.max_error_ratio must be between 0 and 1"),
    ]
    failed = [message for ok, message in checks if not ok]
    if failed:
        raise ValueError("params.yaml: " + "; ".join(failed))
    return settings


def psi_noise_floor(bins: int, samples: int, quantile: float = 0.999) -> float:
    """PSI that `samples` requests from the training distribution itself exceed with probability 1 - `quantile`.

    Without drift, `samples * PSI` follows a chi-squared law with `bins - 1` degrees of freedom
    (PSI is the symmetric Kullback-Leibler divergence), so a threshold under this value would
    raise false alarms.
    """
    return float(chi2.ppf(quantile, bins - 1) / samples)


def bin_edges(values: np.ndarray, bins: int) -> list[float]:
    """Inner edges of `bins` quantile bins (fewer when values repeat, none for a constant)."""
    quantiles = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return [float(edge) for edge in np.unique(quantiles)]


def bin_shares(values: np.ndarray, edges: list[float]) -> list[float]:
    """Share of `values` in each bin; a value equal to an edge goes to the bin above it."""
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return [float(share) for share in counts / max(len(values), 1)]


def category_shares(values: pd.Series, categories: list[str]) -> list[float]:
    """Share of rows in each category, then in the last bin: missing values (the service puts
    missing and unseen categories there)."""
    counts = values.dropna().astype(str).value_counts()
    rows = max(len(values), 1)
    return [float(counts.get(name, 0)) / rows for name in categories] + [float(values.isna().sum()) / rows]


def reference_statistics(frame: pd.DataFrame, spec: Spec, bins: int) -> dict[str, dict[str, Any]]:
    """Per feature: inner bin edges (numbers) or categories, and the share of training rows in each bin."""
    statistics: dict[str, dict[str, Any]] = {}
    for feature in spec["features"]:
        column = spec["columns"][feature]
        kind = column.get("kind")
        if kind == "text":
            buckets = [text_bucket(value, HASH_BUCKETS) for value in frame[feature].dropna()]
            counts = [*np.bincount(buckets, minlength=HASH_BUCKETS).tolist(), int(frame[feature].isna().sum())]
            shares = [count / max(len(frame), 1) for count in counts]
            statistics[feature] = {"kind": kind, "buckets": HASH_BUCKETS, "shares": shares}
            continue
        if column["type"] == "category" and not kind:
            categories = list(column["categories"])
            statistics[feature] = {"categories": categories, "shares": category_shares(frame[feature], categories)}
            continue
        if kind in {"date", "datetime"}:
            values = np.array([days_since_epoch(value) for value in frame[feature]], dtype=float)
        else:
            values = number_column(frame[feature])
        edges = bin_edges(values[~np.isnan(values)], bins)
        # a missing value sorts after every edge: the top bin, as in the service
        statistics[feature] = {"edges": edges, "shares": bin_shares(values, edges)}
        if kind in {"date", "datetime"}:
            statistics[feature]["kind"] = kind
    return statistics


def thresholds(
    settings: MonitoringSettings, gate_min: dict[str, float], gate_max: dict[str, float]
) -> list[dict[str, Any]]:
    """What the service exports as `model_alert_threshold{alert, metric, bound}`."""
    rows: list[dict[str, Any]] = [
        {"alert": "ModelHighErrorRate", "value": settings.max_error_ratio},
        {"alert": "ModelLatencySLOBreach", "value": settings.latency_p99_seconds},
        {"alert": "ModelFeatureDrift", "value": settings.drift.threshold},
        {"alert": "ModelStale", "value": settings.retrain_period_days * SECONDS_PER_DAY},
    ]
    for bound, gate in (("min", gate_min), ("max", gate_max)):
        rows += [
            {"alert": "ModelLiveQualityBelowGate", "metric": metric, "bound": bound, "value": value}
            for metric, value in sorted(gate.items())
        ]
    return rows


def build(params_path: Path = PARAMS_FILE) -> dict[str, Any]:
    """The content of models/monitoring.json, from params.yaml, the features and the training data."""
    params = load_params(params_path)
    settings = parse_monitoring(yaml.safe_load(params_path.read_text(encoding="utf-8"))["monitoring"])
    spec = read_spec(FEATURES_FILE)
    features = spec["features"]
    train = read_frame(TRAIN_DATA)
    floor = psi_noise_floor(settings.drift.bins, settings.drift.min_samples)
    if settings.drift.threshold <= floor:
        print(
            f"reference: warning: monitoring.drift.threshold {settings.drift.threshold} is under the PSI noise "
            f"floor {floor:.3f} of {settings.drift.min_samples} requests: raise it or monitoring.drift.min_samples"
        )
    return {
        "task_type": params.task_type,
        "features": features,
        "training_rows": len(train),
        "reference": reference_statistics(train, spec, settings.drift.bins),
        "settings": asdict(settings),
        "psi_noise_floor": floor,
        "thresholds": thresholds(settings, *live_bounds(params.gate, baseline_for(params, train=train))),
    }


def main() -> None:
    content = build()
    MONITORING_FILE.parent.mkdir(parents=True, exist_ok=True)
    MONITORING_FILE.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    print(f"reference: wrote {MONITORING_FILE} ({len(content['features'])} features, {content['training_rows']} rows)")


if __name__ == "__main__":
    run_step(main)
