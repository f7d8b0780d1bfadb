"""Evaluate: test-set metrics, then the quality gate that decides whether the model is promoted.

Writes metrics/metrics.json (DVC metrics), logs the metrics to the training run, and moves
the alias (``champion``) to the newly registered version only when every threshold in
params.yaml ``gate:`` holds. Otherwise it exits non-zero naming each metric and threshold.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .config import (
    FEATURES_FILE,
    METRICS_FILE,
    MODEL_DIR,
    REGISTRATION_FILE,
    TEST_DATA,
    GateParams,
    load_params,
    run_step,
    tracking_uri,
)
from .metrics import compute_metrics
from .spec import model_input, read_frame, read_spec


def gate_failures(metrics: dict[str, float], gate: GateParams) -> list[str]:
    """One message per broken threshold; an empty list means the gate passes."""
    failures = []
    for bound, thresholds in (("min", gate.minimum), ("max", gate.maximum)):
        for name, threshold in thresholds.items():
            if name not in metrics:
                failures.append(f"params.yaml gate.{bound}.{name}: no metric '{name}' (use one of {sorted(metrics)})")
            elif bound == "min" and metrics[name] < threshold:
                failures.append(
                    f"{name} = {metrics[name]:.4f} is below the minimum {threshold} (params.yaml gate.min.{name})"
                )
            elif bound == "max" and metrics[name] > threshold:
                failures.append(
                    f"{name} = {metrics[name]:.4f} is above the maximum {threshold} (params.yaml gate.max.{name})"
                )
    return failures


def write_metrics(metrics: dict[str, float], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def current_alias_version(model_name: str, alias: str) -> str | None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return str(MlflowClient().get_model_version_by_alias(model_name, alias).version)
    except MlflowException:
        return None


def record_verdict(registration: dict[str, Any], metrics: dict[str, float], alias: str, passed: bool) -> None:
    """Log test metrics to the training run, tag the version, and promote it when it passed."""
    from mlflow import MlflowClient

    client = MlflowClient()
    for name, value in metrics.items():
        client.log_metric(registration["run_id"], f"test_{name}", value)
    name, version = registration["model_name"], registration["version"]
    client.set_model_version_tag(name, version, "quality_gate", "passed" if passed else "failed")
    if passed:
        client.set_registered_model_alias(name, alias, version)


def main() -> None:
    import mlflow

    params = load_params()
    mlflow.set_tracking_uri(tracking_uri())
    spec = read_spec(FEATURES_FILE)
    registration = json.loads(REGISTRATION_FILE.read_text(encoding="utf-8"))
    model = mlflow.sklearn.load_model(str(MODEL_DIR))
    test = read_frame(TEST_DATA)
    metrics = compute_metrics(model, model_input(test, spec), test[params.data.target].to_numpy(), params.task_type)
    write_metrics(metrics, METRICS_FILE)
    failures = gate_failures(metrics, params.gate)
    alias, name, version = params.mlflow.alias, registration["model_name"], registration["version"]
    record_verdict(registration, metrics, alias, passed=not failures)
    if failures:
        kept = current_alias_version(name, alias)
        where = f"stays on version {kept}" if kept else "is not set on any version"
        lines = "\n".join(f"  - {failure}" for failure in failures)
        print(f"quality gate failed for {name} version {version}:\n{lines}\nalias '{alias}' {where}", file=sys.stderr)
        raise SystemExit(1)
    summary = ", ".join(f"{key} = {value:.4f}" for key, value in sorted(metrics.items()))
    print(f"quality gate passed ({summary}): alias '{alias}' -> {name} version {version}")


if __name__ == "__main__":
    run_step(main)
